/**
 * The installed app's side of both pages (docs/app-install.md): the service worker,
 * web push on this device, and the worker's requests to show a place in the app after
 * a notification was clicked.
 *
 * Push follows the server's contract: `GET /api/push/key` gives the VAPID public key
 * (`{public_key}`, base64url, an uncompressed P-256 point), `POST /api/push/subscriptions`
 * keeps `subscription.toJSON()`, and `DELETE /api/push/subscriptions` with `{endpoint}`
 * forgets it. Every failure is a PushError whose `code` the views word for people.
 */

import { ApiError, api } from "./api.js";

const WORKER_URL = "/sw.js";
// How long turning push on waits for the worker to be active before it says so.
const READY_MS = 10000;
// Signing out waits no longer than this for the browser to drop its subscription.
const DROP_MS = 2000;
const OPEN_MESSAGE = "orderchat:open";
// A server without push at all (an older one) has no such route.
const NO_PUSH_STATUS = new Set([404, 501]);

/** Why push could not be turned on or off; `cause` is the failure underneath, if any. */
export class PushError extends Error {
  /**
   * @param {string} code "insecure", "unsupported", "denied", "dismissed", "noWorker",
   *   "unavailable", "serverOff", "badKey", "failed", "offFailed" or "offLocalFailed"
   * @param {unknown} [cause]
   */
  constructor(code, cause) {
    super(code);
    this.name = "PushError";
    this.code = code;
    this.cause = cause;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --- the service worker ---------------------------------------------------------------

let registering = null;

/**
 * Register the service worker, once per page. A page without one works the same
 * online; it only cannot open offline or receive push.
 * @returns {Promise<ServiceWorkerRegistration|null>}
 */
export function registerServiceWorker() {
  if (!registering) registering = startWorker();
  return registering;
}

async function startWorker() {
  if (!window.isSecureContext || !("serviceWorker" in navigator)) return null;
  // Filling the shell's cache waits until the page itself has loaded, not to compete with it.
  if (document.readyState !== "complete")
    await new Promise((resolve) => window.addEventListener("load", resolve, { once: true }));
  try {
    return await navigator.serviceWorker.register(WORKER_URL, { scope: "/" });
  } catch (err) {
    console.warn("the service worker did not register", err);
    return null;
  }
}

/**
 * Follow the worker's requests to show a place (a clicked notification). A place on
 * another page of the app is opened in this window instead.
 * @param {(url: URL) => void} show called with a URL of this page
 */
export function onOpenRequest(show) {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker.addEventListener("message", (event) => {
    const data = event.data;
    if (!data || data.type !== OPEN_MESSAGE || typeof data.url !== "string") return;
    const url = new URL(data.url, location.origin);
    if (url.origin !== location.origin) return;
    if (url.pathname === location.pathname) show(url);
    else location.assign(url.href);
  });
  // A request sent while the page was still starting waits for this.
  navigator.serviceWorker.startMessages();
}

// --- push -------------------------------------------------------------------------------

/**
 * Why this browser cannot take push here, or null when it can.
 * @returns {"insecure"|"unsupported"|null}
 */
export function pushBlocker() {
  if (!window.isSecureContext) return "insecure";
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window))
    return "unsupported";
  return null;
}

/**
 * Whether this user turned push on here and the browser still holds that subscription
 * with the permission granted.
 * @param {string} userId
 * @returns {Promise<boolean>}
 */
export async function pushIsOn(userId) {
  if (pushBlocker() || Notification.permission !== "granted") return false;
  const subscription = await currentSubscription();
  return Boolean(subscription && subscription.endpoint === storedEndpoint(userId));
}

/**
 * Ask for the permission, subscribe this browser with the server's key and give the
 * server the subscription.
 * @param {string} userId
 * @throws {PushError}
 */
export async function enablePush(userId) {
  const blocker = pushBlocker();
  if (blocker) throw new PushError(blocker);
  const permission = await Notification.requestPermission();
  if (permission !== "granted") throw new PushError(permission === "denied" ? "denied" : "dismissed");
  const key = await serverKey();
  const subscription = await subscribe(await activeWorker(), key);
  try {
    await api("/api/push/subscriptions", { method: "POST", body: subscription.toJSON() });
  } catch (err) {
    // A subscription the server does not know would only make the switch lie.
    await subscription.unsubscribe().catch(() => false);
    throw serverFailure(err);
  }
  rememberEndpoint(userId, subscription.endpoint);
}

/**
 * When this user had push on here and the browser now holds another subscription
 * (the push service renewed it: sw.js) or none at all, give the server the current
 * one, made again if it is gone. Quietly does nothing when push was never on here,
 * the permission was taken back, or the server cannot be told now (the next start
 * tries again).
 * @param {string} userId
 * @returns {Promise<boolean>} whether the server was given a new subscription
 */
export async function renewPush(userId) {
  const known = storedEndpoint(userId);
  if (!known || pushBlocker() || Notification.permission !== "granted") return false;
  try {
    let subscription = await currentSubscription();
    if (subscription && subscription.endpoint === known) return false;
    if (!subscription) subscription = await subscribe(await activeWorker(), await serverKey());
    await api("/api/push/subscriptions", { method: "POST", body: subscription.toJSON() });
    rememberEndpoint(userId, subscription.endpoint);
    return true;
  } catch (err) {
    console.warn("the push subscription was not renewed", err);
    return false;
  }
}

/**
 * Unsubscribe this browser and tell the server to forget the subscription.
 * @param {string} userId
 * @throws {PushError} "offLocalFailed" when the browser kept it, "offFailed" when only
 *   the server was not told (its next push to it fails and it drops it then)
 */
export async function disablePush(userId) {
  const subscription = pushBlocker() ? null : await currentSubscription();
  if (!subscription) {
    forgetEndpoint(userId);
    return;
  }
  const endpoint = subscription.endpoint;
  try {
    await subscription.unsubscribe();
  } catch (err) {
    throw new PushError("offLocalFailed", err);
  }
  forgetEndpoint(userId);
  try {
    await api("/api/push/subscriptions", { method: "DELETE", body: { endpoint } });
  } catch (err) {
    // Nothing to forget on a server without push, or one that forgot it already.
    if (!(err instanceof ApiError && NO_PUSH_STATUS.has(err.status))) throw new PushError("offFailed", err);
  }
}

/**
 * On sign-out, or when the session ended: this device stops receiving notifications.
 * The server drops its side with the session. Never slows the sign-out down for long.
 * @param {string} userId
 * @returns {Promise<void>}
 */
export async function dropPush(userId) {
  forgetEndpoint(userId);
  if (pushBlocker()) return;
  const drop = currentSubscription()
    .then((subscription) => subscription && subscription.unsubscribe())
    .catch((err) => console.warn("the push subscription was not dropped", err));
  await Promise.race([drop, sleep(DROP_MS)]);
}

async function currentSubscription() {
  const registration = await navigator.serviceWorker.getRegistration("/");
  return registration ? registration.pushManager.getSubscription() : null;
}

async function serverKey() {
  let found;
  try {
    found = await api("/api/push/key");
  } catch (err) {
    throw serverFailure(err);
  }
  const key = found && typeof found.public_key === "string" ? decodeKey(found.public_key) : null;
  if (!key) throw new PushError("badKey");
  return key;
}

function serverFailure(err) {
  if (err instanceof ApiError && NO_PUSH_STATUS.has(err.status)) return new PushError("serverOff", err);
  return new PushError("failed", err);
}

async function activeWorker() {
  const registration = await registerServiceWorker();
  if (!registration) throw new PushError("noWorker");
  const ready = await Promise.race([navigator.serviceWorker.ready, sleep(READY_MS).then(() => null)]);
  if (!ready) throw new PushError("noWorker");
  return ready;
}

async function subscribe(registration, key) {
  try {
    const existing = await registration.pushManager.getSubscription();
    // One made with another key (the server's keys were replaced) cannot be reused.
    if (existing && !sameBytes(existing.options.applicationServerKey, key)) await existing.unsubscribe();
    return await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  } catch (err) {
    // Anything but a refused permission means there is no push service to talk to
    // (a browser built without one, a headless one, a network that blocks it).
    throw new PushError(err && err.name === "NotAllowedError" ? "denied" : "unavailable", err);
  }
}

/**
 * The server's public key as bytes, or null when it is not an uncompressed P-256
 * point (65 bytes, the first one 4).
 * @param {string} text base64url, padded or not
 * @returns {Uint8Array|null}
 */
export function decodeKey(text) {
  let binary;
  try {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    binary = atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, "="));
  } catch {
    return null;
  }
  const bytes = Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
  return bytes.length === 65 && bytes[0] === 4 ? bytes : null;
}

function sameBytes(buffer, bytes) {
  if (!buffer) return false;
  const other = new Uint8Array(buffer);
  return other.length === bytes.length && other.every((b, i) => b === bytes[i]);
}

// Which subscription this user turned on here: the browser's is shared by whoever
// signs in on it, and the switch must not show another person's as theirs.
const endpointKey = (userId) => `orderchat.push.${userId}`;

function storedEndpoint(userId) {
  try {
    return localStorage.getItem(endpointKey(userId));
  } catch {
    return null;
  }
}

function rememberEndpoint(userId, endpoint) {
  try {
    localStorage.setItem(endpointKey(userId), endpoint);
  } catch (err) {
    console.warn("the push subscription was not remembered", err);
  }
}

function forgetEndpoint(userId) {
  try {
    localStorage.removeItem(endpointKey(userId));
  } catch {
    // Nothing stored that could be removed.
  }
}
