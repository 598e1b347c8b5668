/**
 * Media (`/api/media/…`) when the media cookie cannot authorise it: the visitor's page
 * inside the widget's frame on another site, where a `SameSite=Strict` cookie is never
 * sent (docs/consults.md §1). There the bytes are fetched with the session's bearer
 * token and shown through a `blob:` URL, which the policy allows in img-src and
 * media-src; the cookie itself stays as strict as it is.
 *
 * The players, the lightbox and the timeline set every media address through
 * `setMediaUrl`. Until a page chooses a mode this only sets the attribute, exactly as
 * before, so the staff and customer pages are unchanged. The visitor's page chooses:
 *
 * - `"token"` (inside the widget): media is always fetched with the token;
 * - `"fallback"` (`/chat` on its own): the cookie first; an element that fails to load
 *   tries again with the token, and from then on the page uses the token.
 *
 * A `blob:` URL is shared by every element showing the same media, and revoked once
 * none of them is on the page any more (a message re-rendered or gone, another view)
 * and when the page goes away.
 */

import { getSession } from "../session.js";

const MEDIA_PATH = "/api/media/";
// How long a download's blob URL lives after the click hands it to the browser.
const DOWNLOAD_KEEP_MS = 60000;

/** @type {"off"|"fallback"|"token"} */
let mode = "off";
/** Fetched media by its address: `{url, count, blobUrl, promise}`. */
const cache = new Map();
/** What each element shows through a blob: attribute → cache entry. */
const holders = new Map();
/** Addresses an element tried with the cookie (fallback mode): attribute → address. */
const tried = new WeakMap();
let sweepTimer = null;
let observer = null;

/**
 * How this page authorises media (see above). Only the visitor's page calls this.
 * @param {"off"|"fallback"|"token"} next
 */
export function mediaAuth(next) {
  mode = next === "token" || next === "fallback" ? next : "off";
  if (mode !== "off" && !observer && typeof MutationObserver === "function") {
    // Messages leave the page by being removed: look for blobs nobody shows any more.
    observer = new MutationObserver(scheduleSweep);
    observer.observe(document.documentElement, { childList: true, subtree: true });
    window.addEventListener("pagehide", releaseAll);
  }
}

/** Whether an address is this server's media, the only place the token may go. */
function isMedia(url) {
  try {
    const u = new URL(url, location.href);
    return u.origin === location.origin && u.pathname.startsWith(MEDIA_PATH);
  } catch {
    return false;
  }
}

async function fetchBlob(url) {
  const session = getSession();
  if (!session) throw new Error("no session for media");
  const response = await fetch(url, {
    headers: { Authorization: `Bearer ${session.token}` },
    credentials: "same-origin",
  });
  if (!response.ok) throw new Error(`media answered ${response.status}`);
  return URL.createObjectURL(await response.blob());
}

function acquire(url) {
  let entry = cache.get(url);
  if (!entry) {
    entry = { url, count: 0, blobUrl: null, promise: null };
    const made = entry;
    made.promise = fetchBlob(url).then(
      (blobUrl) => {
        if (made.count > 0) made.blobUrl = blobUrl;
        else URL.revokeObjectURL(blobUrl); // nobody wants it any more
        return blobUrl;
      },
      (err) => {
        if (cache.get(url) === made) cache.delete(url);
        throw err;
      },
    );
    cache.set(url, entry);
  }
  entry.count += 1;
  return entry;
}

function release(entry) {
  entry.count -= 1;
  if (entry.count > 0) return;
  if (cache.get(entry.url) === entry) cache.delete(entry.url);
  if (entry.blobUrl) URL.revokeObjectURL(entry.blobUrl);
  entry.blobUrl = null;
}

/** Show `url` in `el[attr]` through a blob fetched with the token. */
function byToken(el, attr, url) {
  let held = holders.get(el);
  const previous = held ? held.get(attr) : null;
  if (previous && previous.url === url) return;
  const entry = acquire(url);
  if (!held) {
    held = new Map();
    holders.set(el, held);
  }
  held.set(attr, entry);
  entry.promise
    .then(
      (blobUrl) => {
        if (holders.get(el) !== held || held.get(attr) !== entry) return; // superseded or gone
        el.setAttribute(attr, blobUrl);
        el.dataset.mediaUrl = url;
      },
      (err) => console.warn("media not loaded", url, err),
    )
    .finally(() => {
      if (previous) release(previous);
      scheduleSweep();
    });
}

function onCookieError(event) {
  const el = event.currentTarget;
  const url = tried.get(el);
  if (!url || el.getAttribute("src") !== url || !getSession()) return;
  tried.delete(el);
  // The cookie did not do: the token does it for this element and the rest of the page.
  mode = "token";
  el.removeAttribute("src");
  byToken(el, "src", url);
}

/**
 * Set a media address on an element (`src` of an <img>, <audio>, <video>; `poster`).
 * @param {Element} el
 * @param {string} attr
 * @param {string|null|undefined} url
 * @returns {Element} el
 */
export function setMediaUrl(el, attr, url) {
  if (!url) return el;
  if (mode === "off" || !isMedia(url)) {
    dropHeld(el, attr);
    el.setAttribute(attr, url);
  } else if (mode === "token") {
    byToken(el, attr, url);
  } else {
    dropHeld(el, attr);
    el.setAttribute(attr, url);
    if (attr === "src") {
      if (!tried.has(el)) el.addEventListener("error", onCookieError);
      tried.set(el, url);
    }
  }
  return el;
}

/**
 * A download link to media: in token mode the click fetches it with the token and hands
 * the browser a blob to save under the file's name.
 * @param {HTMLAnchorElement} a with `href` and `download` set
 * @returns {HTMLAnchorElement} a
 */
export function mediaLink(a) {
  a.addEventListener("click", (event) => {
    const url = a.getAttribute("href");
    if (mode !== "token" || !url || !isMedia(url)) return;
    event.preventDefault();
    fetchBlob(url).then(
      (blobUrl) => {
        const save = document.createElement("a");
        save.href = blobUrl;
        save.download = a.getAttribute("download") || "";
        save.click();
        setTimeout(() => URL.revokeObjectURL(blobUrl), DOWNLOAD_KEEP_MS);
      },
      (err) => console.warn("download failed", url, err),
    );
  });
  return a;
}

function dropHeld(el, attr) {
  const held = holders.get(el);
  const entry = held && held.get(attr);
  if (!entry) return;
  held.delete(attr);
  if (!held.size) holders.delete(el);
  release(entry);
}

function scheduleSweep() {
  if (sweepTimer !== null || !holders.size) return;
  sweepTimer = setTimeout(sweep, 250);
}

/** Release the blobs of elements no longer on the page. */
function sweep() {
  sweepTimer = null;
  for (const [el, held] of Array.from(holders)) {
    if (el.isConnected) continue;
    holders.delete(el);
    for (const entry of held.values()) release(entry);
  }
}

function releaseAll() {
  for (const held of holders.values()) for (const entry of held.values()) release(entry);
  holders.clear();
}

/** Blobs held now, for tests: how many addresses, and how many elements show them. */
export function heldMedia() {
  return { urls: cache.size, elements: holders.size };
}
