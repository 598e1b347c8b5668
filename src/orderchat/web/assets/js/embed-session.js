/**
 * The visitor's session inside the widget's frame (docs/consults.md §1). A browser that
 * blocks third-party storage gives this frame no localStorage, so session.js keeps the
 * session for this page only and a reload of the shop's page would lose it. The widget
 * (widget.js, on the shop's page) keeps it instead, in that page's own storage:
 *
 * - on start the frame says `ready` to its parent and waits briefly for the session the
 *   widget kept (`session`, or null);
 * - when a visitor starts or signs in here, the frame hands the widget the session
 *   (`store`); when the session ends, it asks the widget to forget it (`forget`).
 *
 * Messages go to, and are taken from, the one origin the widget put in the frame's
 * address (`host`) and the parent window alone. Only a visitor's session (a user of kind
 * customer, whose token sees only their own consults and orders) ever crosses: a staff
 * session is neither handed out nor taken in.
 */

import { getSession, onSessionChange, setSession } from "./session.js";

const PREFIX = "orderchat-widget:";
// A widget answers `ready` at once; a page that frames the chat without one never does.
const WAIT_MS = 1500;

/**
 * The host page's origin as the widget gave it (`host=`), when it is an origin and this
 * page really is framed by it; else null.
 * @param {string|null} host
 * @returns {string|null}
 */
export function hostOrigin(host) {
  if (!host || window.parent === window) return null;
  let origin;
  try {
    const u = new URL(host);
    if (u.protocol !== "https:" && u.protocol !== "http:") return null;
    origin = u.origin;
  } catch {
    return null;
  }
  if (origin !== host) return null;
  // Where the browser says who frames this page, it must be the origin given.
  const ancestors = location.ancestorOrigins;
  if (ancestors && ancestors.length && ancestors[0] !== origin) return null;
  return origin;
}

/** Whether a session may cross to or from the host: a visitor's, well formed. */
export function isVisitorToken(s) {
  return (
    Boolean(s) &&
    typeof s === "object" &&
    typeof s.token === "string" &&
    s.token.length > 0 &&
    s.token.length <= 512 &&
    Boolean(s.user) &&
    typeof s.user === "object" &&
    typeof s.user.id === "string" &&
    (s.user.kind === "customer" || s.user.kind === "visitor") &&
    (!Array.isArray(s.user.roles) || s.user.roles.length === 0) &&
    (s.expires_ts === undefined || s.expires_ts === null || typeof s.expires_ts === "number")
  );
}

function wire(s) {
  const u = s.user;
  return {
    token: s.token,
    expires_ts: typeof s.expires_ts === "number" ? s.expires_ts : null,
    user: { id: u.id, username: u.username || "", display_name: u.display_name || "", roles: [], kind: u.kind },
  };
}

/**
 * Take the session the widget kept, then keep the widget told of this frame's visitor.
 * Resolves once the widget answered (or did not in time); never rejects.
 * @param {string|null} origin from `hostOrigin`
 * @returns {Promise<void>}
 */
export function joinHost(origin) {
  if (!origin) return Promise.resolve();
  const parent = window.parent;
  const tell = (message) => {
    try {
      parent.postMessage({ ...message, type: PREFIX + message.type }, origin);
    } catch (err) {
      console.warn("the widget was not told", err);
    }
  };
  return new Promise((resolve) => {
    let timer = null;
    const onMessage = (event) => {
      if (event.origin !== origin || event.source !== parent) return;
      const data = event.data;
      if (!data || typeof data !== "object" || data.type !== `${PREFIX}session`) return;
      finish(data.session);
    };
    const finish = (kept) => {
      clearTimeout(timer);
      window.removeEventListener("message", onMessage);
      adopt(kept, tell);
      resolve();
    };
    window.addEventListener("message", onMessage);
    timer = setTimeout(() => finish(null), WAIT_MS);
    tell({ type: "ready" });
  });
}

function adopt(kept, tell) {
  const mine = getSession();
  if (isVisitorToken(kept) && (typeof kept.expires_ts !== "number" || kept.expires_ts > Date.now())) {
    if (!mine || mine.token !== kept.token) setSession(kept);
  } else if (kept) {
    tell({ type: "forget" }); // what it kept is no visitor's session: it should not keep it
  }
  // From now on: a visitor who starts or signs in here is kept by the widget; an ended
  // session is forgotten there too. A session this frame found in its own storage is not
  // handed out unasked (a browser that shares storage with the first-party page has it).
  onSessionChange((next) => {
    if (isVisitorToken(next)) tell({ type: "store", session: wire(next) });
    else tell({ type: "forget" }); // signed out, or no longer a visitor here
  });
}
