/**
 * The service worker of both pages, served at /sw.js so its scope is the whole origin
 * (docs/app-install.md).
 *
 * It keeps a copy of the app shell (the pages, styles, modules, icons) so that an
 * installed app opens without a network, and shows the server's push messages as
 * notifications. It never answers for live data: /api, /ws and /media go straight to
 * the network, uncached and unseen, and so does anything of another origin.
 *
 * Pages and assets are network first, the copy only a fallback: the server marks them
 * no-cache so that an upgraded server never runs yesterday's modules, and this worker
 * keeps that promise while the server can be reached.
 */

// The server writes the shell's files and a version made from their contents over the
// next line when it serves this file (api/routes/web.py): any change to the app is then
// a changed worker, which the browser installs with a cache of its own.
const SHELL = { version: "unversioned", files: ["/", "/c"] };

const CACHE_PREFIX = "orderchat-shell-";
const CACHE = CACHE_PREFIX + SHELL.version;
const PAGES = new Set(["/", "/c", "/chat"]);
const NEVER = ["/api", "/ws", "/media"];
// Gateway errors mean the server is out of reach behind its proxy: the kept page is better.
const UNREACHABLE = new Set([502, 503, 504]);
const ICON = "/assets/icons/icon-192.png";
const BADGE = "/assets/icons/badge-96.png";
const OPEN_MESSAGE = "orderchat:open";

// --- the app shell -----------------------------------------------------------------

self.addEventListener("install", (event) => {
  // A new version takes over at once: pages and modules come from the network first
  // anyway, so an open page loses nothing to the switch.
  event.waitUntil(fillShell().then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(dropOldShells().then(() => self.clients.claim()));
});

async function fillShell() {
  const cache = await caches.open(CACHE);
  // Revalidated, not taken from the HTTP cache: the copy must be what the server has now.
  await cache.addAll(SHELL.files.map((path) => new Request(path, { cache: "no-cache" })));
}

async function dropOldShells() {
  const names = await caches.keys();
  const old = names.filter((name) => name.startsWith(CACHE_PREFIX) && name !== CACHE);
  await Promise.all(old.map((name) => caches.delete(name)));
}

self.addEventListener("fetch", (event) => {
  const strategy = strategyFor(event.request);
  if (strategy) event.respondWith(strategy(event));
});

/**
 * How a request is answered: null leaves it to the browser, untouched.
 * @param {Request} request
 * @returns {((event: FetchEvent) => Promise<Response>)|null}
 */
function strategyFor(request) {
  if (request.method !== "GET") return null;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return null;
  if (NEVER.some((prefix) => url.pathname === prefix || url.pathname.startsWith(`${prefix}/`))) return null;
  if (request.mode === "navigate") return PAGES.has(url.pathname) ? pageFromNetwork : null;
  if (url.pathname.startsWith("/assets/")) return assetFromNetwork;
  return null;
}

/** A page from the server, else the kept copy; one copy per page whatever its query. */
async function pageFromNetwork(event) {
  const key = new URL(event.request.url).pathname;
  let response;
  try {
    response = await fetch(event.request);
  } catch (err) {
    const kept = await keptCopy(key);
    if (kept) return kept;
    throw err;
  }
  if (UNREACHABLE.has(response.status)) return (await keptCopy(key)) || response;
  keep(event, key, response);
  return response;
}

async function assetFromNetwork(event) {
  try {
    const response = await fetch(event.request);
    keep(event, event.request, response);
    return response;
  } catch (err) {
    const kept = await keptCopy(event.request);
    if (kept) return kept;
    throw err;
  }
}

/** Refresh the kept copy with what the server just sent, after answering the page. */
function keep(event, key, response) {
  if (!response.ok || response.type !== "basic") return;
  const copy = response.clone();
  event.waitUntil(caches.open(CACHE).then((cache) => cache.put(key, copy)));
}

async function keptCopy(key) {
  const cache = await caches.open(CACHE);
  return cache.match(key);
}

// --- push ----------------------------------------------------------------------------

self.addEventListener("push", (event) => {
  const push = readPush(event.data);
  const { title, options } = notificationOf(push);
  event.waitUntil(
    (async () => {
      // A call's ring has stopped: a page on screen shows that already, so its ringing
      // notification only needs to go; otherwise a quiet one takes its place.
      if (push && push.quiet === true && options.tag && (await pageOnScreen())) {
        const shown = await self.registration.getNotifications({ tag: options.tag });
        shown.forEach((notification) => notification.close());
        return;
      }
      await self.registration.showNotification(title, options);
    })(),
  );
});

async function pageOnScreen() {
  const pages = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  return pages.some((page) => page.visibilityState === "visible");
}

/**
 * The push's JSON object (`{title, body, url, tag, ts}`, and `ring` for an incoming call
 * or `quiet` for the end of one), or null when it is not one.
 * @param {PushMessageData|null} data
 * @returns {object|null}
 */
function readPush(data) {
  if (!data) return null;
  try {
    const value = data.json();
    return value && typeof value === "object" && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

/**
 * What to show for a push. One that cannot be read still says something: a silent
 * push would leave the person unaware, and the browser may revoke the permission.
 */
function notificationOf(push) {
  const text = (value) => (typeof value === "string" ? value : "");
  const options = {
    body: push ? text(push.body) : genericBody(),
    data: { url: push ? samePath(push.url) : null },
    icon: ICON,
    badge: BADGE,
    timestamp: push && Number.isFinite(push.ts) ? push.ts : Date.now(),
    renotify: false,
  };
  if (push && text(push.tag)) options.tag = push.tag;
  if (push && push.ring === true) {
    // An incoming call stays until it is answered, declined or over, and rings again
    // when the same call's notification is replaced.
    options.requireInteraction = true;
    options.renotify = Boolean(options.tag);
    options.vibrate = [300, 200, 300, 200, 300];
  } else if (push && push.quiet === true) {
    options.silent = true; // replaces a call's ringing notification without a sound
  }
  return { title: (push && text(push.title)) || "OrderChat", options };
}

// The worker cannot read the page's chosen language; the browser's is the best guess.
function genericBody() {
  return String(self.navigator.language || "").startsWith("zh") ? "有新消息" : "You have a new message";
}

/**
 * A path of this origin (`/#/c/…`, `/c?order=…`), or null for anything else: a push
 * must never send a person to another site.
 * @param {unknown} value
 * @returns {string|null}
 */
function samePath(value) {
  if (typeof value !== "string" || !value) return null;
  try {
    const url = new URL(value, self.location.origin);
    return url.origin === self.location.origin ? url.pathname + url.search + url.hash : null;
  } catch {
    return null;
  }
}

/*
 * The push service replaced or ended this browser's subscription (keys rotated, a
 * long time unused). Subscribe again with the same key at once, so that pushes
 * keep coming; the worker holds no session, so the page tells the server of the new
 * subscription the next time it opens (pwa.js: renewPush).
 */
self.addEventListener("pushsubscriptionchange", (event) => {
  const old = event.oldSubscription;
  const key = old && old.options ? old.options.applicationServerKey : null;
  if (!key || event.newSubscription) return;
  event.waitUntil(
    self.registration.pushManager
      .subscribe({ userVisibleOnly: true, applicationServerKey: key })
      .catch((err) => console.warn("the push subscription was not renewed", err)),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const data = event.notification.data || {};
  event.waitUntil(openApp(samePath(data.url)));
});

/**
 * Bring the app to `path`: an open window of the same page is told where to go (it
 * keeps its connection and its state); otherwise a new window opens there.
 * @param {string|null} path
 */
async function openApp(path) {
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const client = chooseWindow(windows, path);
  if (!client) return self.clients.openWindow(path || "/");
  // Refused when the click gave no user activation; the message still goes.
  await client.focus().catch(() => null);
  if (path) client.postMessage({ type: OPEN_MESSAGE, url: path });
  return client;
}

function chooseWindow(windows, path) {
  const pathname = path ? new URL(path, self.location.origin).pathname : null;
  const samePage = windows.filter((client) => new URL(client.url).pathname === pathname);
  const pool = samePage.length ? samePage : windows;
  return (
    pool.find((client) => client.focused) || pool.find((client) => client.visibilityState === "visible") || pool[0]
  );
}
