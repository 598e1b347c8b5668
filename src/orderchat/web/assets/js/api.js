/**
 * The HTTP API: one function that adds the bearer token, speaks JSON, and turns the
 * server's error body into an exception the views can branch on by `code`.
 */

import { clearSession, deviceLabel, getSession, setSession } from "./session.js";
import { getLang, t } from "./i18n.js";
import "./ui/strings-texts.js";

/** An HTTP failure, with the server's `code` (docs/protocol.md §1.1) to branch on. */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status, or 0 when the server could not be reached
   * @param {string} code e.g. "forbidden", "conflict", "network"
   * @param {string} message the server's explanation, for people
   * @param {number|null} [retryAfter] seconds, from `Retry-After`
   * @param {string|null} [reason] the server's stable key for what went wrong (docs/texts.md)
   * @param {Object<string, *>|null} [params] the values its message was worded with
   */
  constructor(status, code, message, retryAfter = null, reason = null, params = null) {
    super(message || code);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
    this.reason = reason;
    this.params = params;
  }
}

/**
 * The headers every call carries besides its own: the interface language, so the
 * server words its answers (errors above all) in the language the reader chose.
 * @returns {Object<string,string>}
 */
export function languageHeaders() {
  return { "Accept-Language": getLang() };
}

/**
 * A sentence for a person about a failed call (an ApiError or an `error` frame), in
 * the interface language.
 *
 * The server words its `message` in the language this page sent, so a failure it
 * explains is shown as it says it; a `reason` this page has a text of its own for
 * (`reason.<key>` in the strings) reads that instead. A failure without a `reason`
 * (no answer, a proxy's page, an older server) gets this page's sentence for its
 * `code` alone: the server's words may be in another language and are never glued
 * to ours.
 * @param {unknown} err
 * @returns {string}
 */
export function errorText(err) {
  const e = /** @type {{code?: string, message?: string, reason?: string|null, params?: object|null}} */ (err || {});
  if (e.reason) {
    const own = t(`reason.${e.reason}`, e.params || {});
    if (own !== `reason.${e.reason}`) return own;
    if (e.message) return e.message;
  }
  const known = {
    network: "err.network",
    unauthorized: "err.unauthorized",
    forbidden: "err.forbidden",
    not_found: "err.not_found",
    conflict: "texts.err.conflict",
    rate_limited: "err.rate_limited",
    too_large: "texts.err.too_large",
    cancelled: "texts.err.cancelled",
  };
  return t(known[e.code || ""] || "texts.err.generic");
}

/**
 * Build an ApiError from a response whose status says it failed, reading the
 * `{"error": {code, message}}` body when there is one.
 * @param {number} status
 * @param {string} bodyText
 * @param {string|null} retryAfterHeader
 * @returns {ApiError}
 */
export function errorFromBody(status, bodyText, retryAfterHeader = null) {
  let code =
    status === 401 ? "unauthorized" : status === 404 ? "not_found" : status >= 500 ? "internal" : "bad_request";
  let message = `HTTP ${status}`;
  let reason = null;
  let params = null;
  try {
    const body = JSON.parse(bodyText);
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
      reason = typeof body.error.reason === "string" ? body.error.reason : null;
      params = body.error.params && typeof body.error.params === "object" ? body.error.params : null;
    }
  } catch {
    // Not JSON (a proxy's error page): keep the status-derived code.
  }
  const retry = retryAfterHeader ? Number(retryAfterHeader) : null;
  return new ApiError(status, code, message, Number.isFinite(retry) ? retry : null, reason, params);
}

/**
 * Call the HTTP API. A 401 also forgets the session, because the token is dead and
 * every view must go back to signing in.
 * @param {string} path e.g. "/api/orders/o_1"
 * @param {{method?: string, body?: *, headers?: Object<string,string>, signal?: AbortSignal,
 *          auth?: boolean, idempotencyKey?: string}} [options]
 *   `body` objects are sent as JSON; `auth: false` leaves the token off (sign-in calls).
 * @returns {Promise<*>} the parsed JSON, or null for an empty answer (204)
 * @throws {ApiError}
 */
export async function api(path, options = {}) {
  const {
    method = options.body === undefined ? "GET" : "POST",
    body,
    headers = {},
    signal,
    auth = true,
    idempotencyKey,
  } = options;
  const sendHeaders = { Accept: "application/json", ...languageHeaders(), ...headers };
  const session = auth ? getSession() : null;
  if (session) sendHeaders.Authorization = `Bearer ${session.token}`;
  if (idempotencyKey) sendHeaders["Idempotency-Key"] = idempotencyKey;
  let payload = body;
  if (
    body !== undefined &&
    body !== null &&
    !(body instanceof Blob) &&
    !(body instanceof FormData) &&
    typeof body !== "string"
  ) {
    payload = JSON.stringify(body);
    sendHeaders["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, { method, headers: sendHeaders, body: payload, signal, credentials: "same-origin" });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, "network", err && err.message ? err.message : "network error");
  }
  const text = response.status === 204 ? "" : await response.text();
  if (!response.ok) {
    const error = errorFromBody(response.status, text, response.headers.get("Retry-After"));
    if (response.status === 401 && auth && session) clearSession();
    throw error;
  }
  if (!text) return null;
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) return JSON.parse(text);
  return text;
}

/**
 * Staff sign-in: keeps the session and sets the media cookie so pictures load.
 * @param {string} username
 * @param {string} password
 * @returns {Promise<{token: string, user: object, expires_ts: number}>}
 */
export async function login(username, password) {
  const session = await api("/api/auth/login", {
    method: "POST",
    body: { username, password, device: deviceLabel() },
    auth: false,
  });
  setSession(session);
  // The workspace sets the media cookie when it opens, after a sign-in or a reload.
  return session;
}

/**
 * A customer's invitation link: exchange its token for a session of their own.
 * @param {string} token the part of `/c#TOKEN` after the `#`
 * @returns {Promise<{token: string, user: object, expires_ts: number}>}
 */
export async function signInWithInvitation(token) {
  const session = await api("/api/auth/invitation", {
    method: "POST",
    body: { token, device: deviceLabel() },
    auth: false,
  });
  setSession(session);
  await setMediaCookie().catch((err) => console.warn("media cookie not set", err));
  return session;
}

/**
 * Sign out this device. The session is forgotten locally even if the server cannot be
 * reached, because the person asked to leave.
 * @returns {Promise<void>}
 */
export async function logout() {
  try {
    await api("/api/auth/logout", { method: "POST" });
  } finally {
    clearSession();
  }
}

/**
 * Sign out every device of this user (a lost phone).
 * @returns {Promise<{revoked: number}>}
 */
export async function logoutEverywhere() {
  try {
    return await api("/api/auth/logout-all", { method: "POST" });
  } finally {
    clearSession();
  }
}

/**
 * Let `<img>`, `<video>` and download links fetch `/api/media/...`, which cannot carry a
 * bearer header: the server sets an HttpOnly cookie scoped to the media routes.
 * Call after sign-in and on every page load with a stored session.
 * @returns {Promise<void>}
 */
export async function setMediaCookie() {
  await api("/api/auth/cookie", { method: "POST" });
}

/**
 * A stored session coming back on a page load: set its media cookie, and tell whether
 * the server still knows the session (false: it answered 401). Any other failure only
 * costs the pictures for now, and is logged.
 * @returns {Promise<boolean>}
 */
export async function storedSessionLives() {
  try {
    await setMediaCookie();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return false;
    console.warn("media cookie not set", err);
  }
  return true;
}
