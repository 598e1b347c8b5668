/**
 * Stored system messages in the reader's language: a message whose `meta.say` holds
 * catalogue texts (`{key, params}`, or a list of them for several lines) is worded
 * here from `texts-table.js`, the server's catalogue copied by scripts/texts_js.py.
 * A key this page does not know falls back to the message's stored text (zh-CN).
 */

import { getLang } from "./i18n.js";
import { TEXTS } from "./texts-table.js";

/**
 * One parameter as shown: a nested text, a name kept in both languages, a list, a value.
 * @param {*} value
 * @param {string} lang
 * @returns {string}
 */
function shown(value, lang) {
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.map((v) => shown(v, lang)).join(", ");
  if (typeof value === "object") {
    if (typeof value.key === "string") return renderOne(value, lang) ?? "";
    return String(value[lang] ?? value["zh-CN"] ?? Object.values(value)[0] ?? "");
  }
  return String(value);
}

/**
 * @param {{key?: string, params?: Object<string, *>}} say
 * @param {string} lang
 * @returns {string|null} null when the key is not in this page's copy
 */
function renderOne(say, lang) {
  const entry = say && typeof say.key === "string" ? TEXTS[say.key] : undefined;
  if (!entry) return null;
  const template = entry[lang] ?? entry["zh-CN"];
  const params = (say && say.params) || {};
  return template.replace(/\{(\w+)\}/g, (_, name) => shown(params[name], lang));
}

/**
 * A message's `meta.say` in the interface language, or `fallback` when it cannot be.
 * @param {*} say one `{key, params}` or a list of them (one line each)
 * @param {string} fallback the message's stored text
 * @returns {string}
 */
export function sayText(say, fallback) {
  const lang = getLang();
  const lines = (Array.isArray(say) ? say : [say]).map((s) => renderOne(s, lang));
  return lines.length && lines.every((line) => line !== null) ? lines.join("\n") : fallback;
}
