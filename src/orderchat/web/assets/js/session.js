/**
 * The signed-in session, kept in localStorage so that every tab of this origin shares
 * it, and so that signing out in one tab signs out the others.
 */

const KEY = "orderchat.session";
const listeners = new Set();
// Where the session lives when the browser denies this page its storage (the chat in
// another site's frame, with third-party storage blocked): this page only, until it closes.
let inMemory = null;

function read() {
  let raw;
  try {
    raw = localStorage.getItem(KEY);
  } catch {
    raw = inMemory;
  }
  if (!raw) return null;
  try {
    const s = JSON.parse(raw);
    if (!s || typeof s.token !== "string" || !s.user) return null;
    return s;
  } catch {
    return null;
  }
}

function notify(session) {
  for (const fn of Array.from(listeners)) {
    try {
      fn(session);
    } catch (err) {
      console.warn("session listener failed", err);
    }
  }
}

/**
 * The current session, or null when there is none or it has passed its expiry
 * (the server would refuse it anyway, so the page can show sign-in at once).
 * @returns {{token: string, user: object, expires_ts: number}|null}
 */
export function getSession() {
  const s = read();
  if (!s) return null;
  if (typeof s.expires_ts === "number" && s.expires_ts <= Date.now()) return null;
  return s;
}

/**
 * Keep a new session (after sign-in) and tell this tab's listeners; other tabs hear it
 * through the `storage` event.
 * @param {{token: string, user: object, expires_ts: number}} s
 */
export function setSession(s) {
  const value = { token: s.token, user: s.user, expires_ts: s.expires_ts };
  try {
    localStorage.setItem(KEY, JSON.stringify(value));
    inMemory = null;
  } catch (err) {
    console.warn("could not store the session; it is kept for this page only", err);
    inMemory = JSON.stringify(value);
  }
  notify(value);
}

/**
 * Forget the session (sign-out, or the server said the token is dead).
 * Listeners are told only when there was something to forget.
 */
export function clearSession() {
  let had = inMemory !== null;
  inMemory = null;
  try {
    had = localStorage.getItem(KEY) !== null || had;
    localStorage.removeItem(KEY);
  } catch {
    // Nothing stored that we could remove.
  }
  if (had) notify(null);
}

/**
 * Be told when the session changes, in this tab or in another one.
 * @param {(session: object|null) => void} fn receives the new session, or null
 * @returns {() => void} unsubscribe
 */
export function onSessionChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

window.addEventListener("storage", (event) => {
  if (event.key === KEY || event.key === null) notify(getSession());
});

/**
 * A readable name for this device ("Chrome on Android"), stored by the server with the
 * session so a person can tell their sessions apart.
 * @returns {string} 1–64 characters
 */
export function deviceLabel() {
  const ua = navigator.userAgent || "";
  let browser = "Browser";
  if (/Edg\//.test(ua)) browser = "Edge";
  else if (/OPR\/|Opera/.test(ua)) browser = "Opera";
  else if (/MicroMessenger/i.test(ua)) browser = "WeChat";
  else if (/Firefox\//.test(ua)) browser = "Firefox";
  else if (/Chrome\/|Chromium\/|CriOS\//.test(ua)) browser = "Chrome";
  else if (/Safari\//.test(ua)) browser = "Safari";
  let os = "";
  if (/Android/i.test(ua)) os = "Android";
  else if (/iPhone|iPad|iPod/i.test(ua)) os = "iOS";
  else if (/Windows/i.test(ua)) os = "Windows";
  else if (/Mac OS X|Macintosh/i.test(ua)) os = "macOS";
  else if (/CrOS/i.test(ua)) os = "ChromeOS";
  else if (/Linux/i.test(ua)) os = "Linux";
  const label = os ? `${browser} on ${os}` : browser;
  return label.slice(0, 64);
}
