/**
 * Interface text in Simplified Chinese and English. Every string a person reads goes
 * through `t()`, so switching language redraws everything from the same keys.
 */

const STORAGE_KEY = "orderchat.lang";
export const LANGS = ["zh-CN", "en"];

const strings = {
  "zh-CN": {
    "lang.label": "语言",
    "conn.online": "已连接",
    "conn.offline": "已断开，正在重连…",
    "conn.connecting": "连接中…",
    "fmt.today": "今天",
    "fmt.yesterday": "昨天",
    "common.ok": "确定",
    "common.cancel": "取消",
    "common.close": "关闭",
    "common.retry": "重试",
    "common.loading": "加载中…",
    "common.download": "下载",
    "common.send": "发送",
    "err.network": "网络连接失败，请稍后再试。",
    "err.generic": "出错了：{message}",
    "err.unauthorized": "登录已失效，请重新登录。",
    "err.forbidden": "没有权限执行此操作。",
    "err.not_found": "内容不存在或已被删除。",
    "err.conflict": "操作与当前状态冲突：{message}",
    "err.rate_limited": "操作太频繁，请稍后再试。",
    "err.too_large": "内容太大：{message}",
    "upload.failed": "上传失败：{message}",
    "recorder.unsupported": "此浏览器不支持录音。",
    "recorder.denied": "无法使用麦克风，请在浏览器中允许访问麦克风。",
  },
  en: {
    "lang.label": "Language",
    "conn.online": "Online",
    "conn.offline": "Offline, reconnecting…",
    "conn.connecting": "Connecting…",
    "fmt.today": "Today",
    "fmt.yesterday": "Yesterday",
    "common.ok": "OK",
    "common.cancel": "Cancel",
    "common.close": "Close",
    "common.retry": "Retry",
    "common.loading": "Loading…",
    "common.download": "Download",
    "common.send": "Send",
    "err.network": "Could not reach the server. Please try again.",
    "err.generic": "Something went wrong: {message}",
    "err.unauthorized": "Your session has ended. Please sign in again.",
    "err.forbidden": "You are not allowed to do that.",
    "err.not_found": "This no longer exists.",
    "err.conflict": "That conflicts with the current state: {message}",
    "err.rate_limited": "Too many requests. Please wait a moment.",
    "err.too_large": "Too large: {message}",
    "upload.failed": "Upload failed: {message}",
    "recorder.unsupported": "This browser cannot record audio.",
    "recorder.denied": "The microphone is not available. Please allow access to it in the browser.",
  },
};

function detect() {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (LANGS.includes(saved)) return saved;
  } catch {
    // Storage may be unavailable (private mode); fall back to the browser's languages.
  }
  const prefs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"];
  for (const pref of prefs) {
    const lower = String(pref).toLowerCase();
    if (lower.startsWith("zh")) return "zh-CN";
    if (lower.startsWith("en")) return "en";
  }
  return "en";
}

let current = detect();
document.documentElement.lang = current;

/**
 * Translate a key in the current language, filling `{name}` placeholders from params.
 * Falls back to the other language, then to the key itself, so a missing string is
 * visible rather than blank.
 * @param {string} key
 * @param {Object<string, *>} [params]
 * @returns {string}
 */
export function t(key, params) {
  let text = strings[current][key];
  if (text === undefined) {
    for (const lang of LANGS) {
      if (strings[lang][key] !== undefined) {
        text = strings[lang][key];
        break;
      }
    }
  }
  if (text === undefined) return key;
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (match, name) =>
    name in params && params[name] !== null && params[name] !== undefined ? String(params[name]) : match,
  );
}

/**
 * The text for a key built from a server value (a status, a kind), or `fallback` when
 * neither language has one: a value newer than this page still reads sensibly.
 * @param {string} key
 * @param {string} fallback
 * @returns {string}
 */
export function tOr(key, fallback) {
  const text = t(key);
  return text === key ? fallback : text;
}

/**
 * Let each page or component bring its own strings, keeping this module small.
 * @param {{"zh-CN"?: Object<string,string>, en?: Object<string,string>}} table
 */
export function addStrings(table) {
  for (const lang of LANGS) {
    if (table[lang]) Object.assign(strings[lang], table[lang]);
  }
}

/**
 * The language the interface is in now ("zh-CN" or "en").
 * @returns {string}
 */
export function getLang() {
  return current;
}

/**
 * Switch language, remember it for next time, and tell every view (`langchange` on
 * window) so it can redraw its text.
 * @param {string} lang
 */
export function setLang(lang) {
  if (!LANGS.includes(lang) || lang === current) return;
  current = lang;
  document.documentElement.lang = lang;
  try {
    localStorage.setItem(STORAGE_KEY, lang);
  } catch {
    // Not remembered across visits, but the switch still applies now.
  }
  window.dispatchEvent(new CustomEvent("langchange", { detail: lang }));
}

/**
 * The text for the current language from a server label such as
 * `{"zh-CN": "已打包", "en": "Packed"}` (the server sends both), or `fallback` when
 * there is none. The one place a server label becomes the reader's language.
 * @param {Object<string,string>|string|null} label
 * @param {string} [fallback]
 * @returns {string}
 */
export function pickText(label, fallback = "") {
  if (!label) return fallback;
  if (typeof label === "string") return label;
  return label[current] || label["zh-CN"] || label.en || Object.values(label)[0] || fallback;
}

/**
 * The language picker every page shows; it stays in step when the language is changed
 * elsewhere (another picker, another view).
 * @returns {HTMLSelectElement}
 */
export function langSwitcher() {
  const select = document.createElement("select");
  select.setAttribute("data-testid", "lang");
  select.className = "lang-switcher";
  select.setAttribute("aria-label", t("lang.label"));
  for (const [value, label] of [
    ["zh-CN", "中文"],
    ["en", "English"],
  ]) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = label;
    select.appendChild(option);
  }
  select.value = current;
  select.addEventListener("change", () => setLang(select.value));
  window.addEventListener("langchange", () => {
    select.value = current;
    select.setAttribute("aria-label", t("lang.label"));
  });
  return select;
}
