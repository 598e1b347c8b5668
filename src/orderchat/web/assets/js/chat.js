/**
 * The visitor's page, `/chat` (docs/consults.md): someone without an order yet writes
 * to the shop. A visitor new to this device gives a name and starts a consult; the
 * session is kept like a customer's (session.js), so a returning visitor lands in their
 * consults. The page shows their consults and orders, and one consult's conversation
 * with the same timeline, composer and connection as the customer page.
 *
 * The query string says where the visitor came from: `src` (page, widget, qr), `tag`,
 * `page` (the address they were reading), `sku`, and `embed=1` inside the widget's
 * frame, with `host`, the origin of the shop's page that keeps the visitor's session
 * (embed-session.js). `#resume=TOKEN` is a link mailed to continue on another device.
 * Inside the frame pictures and voice load with the token, not the media cookie
 * (ui/media-src.js).
 *
 * Like the other pages, the state is one object made at start and passed along as `c`.
 */

import { clear, h } from "./dom.js";
import { LANGS, getLang, langSwitcher, setLang, t } from "./i18n.js";
import { clearSession, deviceLabel, getSession, onSessionChange, setSession } from "./session.js";
import { ApiError, api, errorText, setMediaCookie, storedSessionLives } from "./api.js";
import { Realtime } from "./socket.js";
import { dropPush, registerServiceWorker } from "./pwa.js";
import { icon } from "./ui/icons.js";
import { resumeFailedView, startView } from "./ui/chat-start.js";
import { emailLinkButton, homeView } from "./ui/chat-home.js";
import { ConsultChat, consultConv, isBlock } from "./ui/chat-consult.js";
import { mediaAuth } from "./ui/media-src.js";
import { hostOrigin, joinHost } from "./embed-session.js";
import "./ui/strings-chat.js";

const CONSULT_KEY = "orderchat.chat.consult";
const SOURCES = new Set(["page", "widget", "qr"]);
const root = document.getElementById("app");

/** Everything the page holds; `generation` drops answers for a view no longer shown. */
function newPage() {
  return {
    params: readParams(),
    session: null,
    realtime: null,
    watching: false,
    consults: [],
    orders: [],
    chat: null,
    opening: null,
    buffered: [],
    generation: 0,
    redraw: null,
    retry: null,
    mailOff: false,
    connection: null,
    homeRedraw: null,
  };
}

/**
 * Where the visitor came from, from the query string; values the server would refuse
 * are left out rather than failing the start.
 */
function readParams() {
  const q = new URLSearchParams(location.search);
  // The server's rules for each (api/routes/consults.py): a value that breaks them is dropped.
  const valid = (value, max, pattern) => {
    const v = (value || "").trim();
    return v && v.length <= max && pattern.test(v) ? v : null;
  };
  const embed = q.get("embed") === "1";
  const src = (q.get("src") || "").toLowerCase();
  return {
    source: SOURCES.has(src) ? src : embed ? "widget" : "page",
    tag: valid(q.get("tag"), 64, /^[A-Za-z0-9._-]+$/),
    page_url: valid(q.get("page"), 500, /^https?:\/\/\S+$/),
    sku: valid(q.get("sku"), 64, /\S/),
    embed,
    host: embed ? q.get("host") : null,
    lang: q.get("lang"),
  };
}

/** What a new consult says about where it came from (no empty fields). */
export function origin(params) {
  const body = { source: params.source };
  for (const key of ["tag", "page_url", "sku"]) if (params[key]) body[key] = params[key];
  return body;
}

/** A session this page can use: a visitor's, or a customer's (they may ask too). */
function isVisitorSession(session) {
  const kind = session && session.user && session.user.kind;
  return kind === "visitor" || kind === "customer";
}

function takeResumeToken() {
  const hash = location.hash || "";
  const match = /^#resume=(.+)$/.exec(hash);
  if (!match) return null;
  // The token must not stay in the address bar, the history or a bookmark.
  history.replaceState(null, "", location.pathname + location.search);
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return match[1];
  }
}

function rememberConsult(id) {
  try {
    if (id) sessionStorage.setItem(CONSULT_KEY, id);
    else sessionStorage.removeItem(CONSULT_KEY);
  } catch {
    // Only a convenience for reloads.
  }
}

function rememberedConsult() {
  try {
    return sessionStorage.getItem(CONSULT_KEY);
  } catch {
    return null;
  }
}

/** The language the host site asked for (`data-lang`), unless the visitor chose one. */
function applyAskedLanguage(lang) {
  if (!lang) return;
  const wanted = LANGS.find((l) => l.toLowerCase() === lang.toLowerCase() || l.split("-")[0] === lang.split("-")[0]);
  let chosen;
  try {
    chosen = localStorage.getItem("orderchat.lang");
  } catch {
    chosen = null;
  }
  if (wanted && !chosen && wanted !== getLang()) setLang(wanted);
}

function main() {
  const c = newPage();
  if (c.params.embed) document.body.classList.add("chat-embed");
  // A frame on another site never sends the SameSite=Strict media cookie: the token does.
  mediaAuth(c.params.embed ? "token" : "fallback");
  applyAskedLanguage(c.params.lang);
  document.documentElement.lang = getLang();
  // Inside another site's frame the worker would be that site's partition's: not worth it.
  if (!c.params.embed) registerServiceWorker();
  window.addEventListener("langchange", () => {
    document.documentElement.lang = getLang();
    if (c.redraw) c.redraw();
  });
  window.addEventListener("hashchange", () => {
    if (/^#resume=/.test(location.hash)) location.reload();
  });
  showLoading(c);
  // In the widget, the session the shop's page kept for this visitor comes first.
  const joined = c.params.embed ? joinHost(hostOrigin(c.params.host)) : Promise.resolve();
  joined
    .then(() => begin(c))
    .catch((err) => {
      console.warn("the page failed to start", err);
      showError(c, err, () => begin(c));
    });
}

async function begin(c) {
  const resume = takeResumeToken();
  if (resume && !(await resumeWith(c, resume))) return;
  const session = getSession();
  if (!isVisitorSession(session)) {
    showStart(c);
    return;
  }
  if (!(await storedSessionLives())) {
    showStart(c);
    return;
  }
  enter(c, session);
  await loadHome(c, true);
}

/** A link mailed to continue on this device: it signs in as the same visitor. */
async function resumeWith(c, token) {
  try {
    const session = await api("/api/auth/visitor-link", {
      method: "POST",
      body: { token, device: deviceLabel() },
      auth: false,
    });
    setSession(session);
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.code === "network") {
      showError(c, err, () => {
        location.hash = `resume=${encodeURIComponent(token)}`;
      });
    } else {
      showResumeFailed(c);
    }
    return false;
  }
}

function enter(c, session) {
  c.session = session;
  if (!c.watching) {
    c.watching = true;
    onSessionChange((next) => {
      if (!c.session) return;
      if (!next) {
        leave(c);
      } else if (next.user.id !== c.session.user.id) {
        // Another visitor (or a resume link) signed in in another tab: follow it.
        location.reload();
      }
    });
  }
  if (!c.realtime) startRealtime(c);
}

/** The session is over: back to the start form. */
function leave(c) {
  stopRealtime(c);
  closeChat(c);
  c.session = null;
  c.consults = [];
  c.orders = [];
  rememberConsult(null);
  showStart(c);
}

function startRealtime(c) {
  const realtime = new Realtime({
    getToken: () => (c.session ? c.session.token : null),
    getUserId: () => (c.session ? c.session.user.id : null),
    device: deviceLabel(),
  });
  c.realtime = realtime;
  realtime.addEventListener("state", () => renderConnection(c));
  realtime.addEventListener("frame", (event) => applyFrame(c, event.detail));
  let welcomed = false;
  let stale = false;
  realtime.addEventListener("welcome", () => {
    if (c.retry) {
      const retry = c.retry;
      c.retry = null;
      retry();
    } else if (welcomed && (stale || !realtime.resumed)) {
      // A connection that could not resume may have missed events: read again.
      reloadAll(c);
    }
    welcomed = true;
    stale = false;
  });
  realtime.addEventListener("reset", () => {
    stale = true;
  });
  realtime.addEventListener("outbox", () => {
    if (c.chat) c.chat.showPending();
  });
  realtime.addEventListener("error", (event) => {
    // Only a block is worth a notice here; a send's own refusal comes with its answer.
    if (c.chat && isBlock(event.detail)) c.chat.refused(event.detail);
  });
  realtime.addEventListener("signedout", () => {
    if (c.session) dropPush(c.session.user.id);
    clearSession();
    if (c.session) leave(c);
  });
  realtime.start();
}

function stopRealtime(c) {
  if (c.realtime) c.realtime.stop();
  c.realtime = null;
}

function reloadAll(c) {
  if (c.chat) openConsult(c, c.chat.consult.id);
  else loadHome(c, false);
}

// --- data ---------------------------------------------------------------------------

function newestFirst(list) {
  return [...list].sort((a, b) => (b.created_ts || 0) - (a.created_ts || 0));
}

/**
 * The visitor's consults and orders. `pick` opens the consult this tab had open, or
 * the newest one still going; otherwise the list shows.
 */
async function loadHome(c, pick) {
  const generation = ++c.generation;
  let found;
  try {
    found = await api("/api/me/consults");
  } catch (err) {
    handleLoadError(c, err, () => loadHome(c, pick));
    return;
  }
  if (generation !== c.generation) return;
  c.consults = newestFirst(found.consults || []);
  c.orders = found.orders || [];
  if (found.email_link === false || found.mail === false) c.mailOff = true;
  if (pick) {
    const remembered = rememberedConsult();
    const chosen = c.consults.find((x) => x.id === remembered) || c.consults.find((x) => x.status !== "closed");
    if (chosen) {
      await openConsult(c, chosen.id);
      return;
    }
  }
  showHome(c);
}

function handleLoadError(c, err, retry) {
  if (err instanceof ApiError && err.status === 401) {
    leave(c);
  } else {
    showError(c, err, retry);
  }
}

/**
 * A consult's change as its system message tells it (`meta.consult`: its id, status,
 * assignee's id and name, order's id), in the shape the API gives a consult.
 * @param {object} meta the system message's meta
 * @returns {object}
 */
export function consultChange(meta) {
  const said = meta.consult;
  const change = { id: said.id, status: said.status };
  if ("assignee" in said) {
    const a = said.assignee;
    change.assignee = a && typeof a === "object" ? a : a ? { id: a, display_name: said.assignee_name || "" } : null;
  }
  if ("order" in said) {
    const o = said.order;
    const number = meta.order_id === o ? meta.number || null : null;
    change.order = o && typeof o === "object" ? o : o ? { id: o, number } : null;
  }
  if ("position" in said) change.position = said.position;
  // Its place in the queue only holds while it waits.
  else if (said.status && said.status !== "queued") change.position = null;
  return change;
}

/** A consult as the server now tells it: in the list, and in the view if it is open. */
function noteConsult(c, meta) {
  if (!meta.consult || !meta.consult.id) return;
  const consult = consultChange(meta);
  const known = c.consults.find((x) => x.id === consult.id);
  if (known && known.order && consult.order && !consult.order.number) consult.order = known.order;
  const merged = { ...(known || {}), ...consult };
  c.consults = newestFirst([merged, ...c.consults.filter((x) => x.id !== consult.id)]);
  // An order made from it: the visitor's orders list it from now on.
  if (merged.order && merged.order.id && !c.orders.some((o) => o.id === merged.order.id)) {
    c.orders = [{ id: merged.order.id, number: merged.order.number, conv: meta.order_conv || null }, ...c.orders];
  }
  if (c.chat && c.chat.consult.id === consult.id) c.chat.update(merged);
  else if (!c.chat && c.redraw === c.homeRedraw && c.homeRedraw) c.homeRedraw();
}

function applyFrame(c, frame) {
  if (frame.op === "message" && frame.meta && frame.meta.consult) noteConsult(c, frame.meta);
  if (frame.op === "order" && frame.order) {
    c.orders = c.orders.map((o) => (o.id === frame.order.id ? { ...o, ...frame.order } : o));
  }
  const chat = c.chat;
  if (chat && frame.conv === chat.conv.id) {
    chat.applyFrame(frame);
  } else if (c.opening && frame.conv === c.opening) {
    c.buffered.push(frame);
  }
}

// --- views --------------------------------------------------------------------------

function header(c) {
  const connection = h("span", { class: "c-connection", testid: "connection", role: "status" });
  c.connection = connection;
  renderConnection(c);
  return h(
    "header",
    { class: "c-header chat-header" },
    h(
      "div",
      { class: "c-header-main" },
      h("span", { class: "chat-logo", "aria-hidden": "true" }, icon("chat")),
      h("span", { class: "c-brand" }, t("ch.title")),
    ),
    h("div", { class: "c-header-tools" }, c.session ? connection : null, langSwitcher()),
  );
}

function renderConnection(c) {
  const el = c.connection;
  if (!el || !c.realtime) return;
  const s = c.realtime.state;
  const noNetwork = s === "offline" && c.realtime.networkDown();
  const label = noNetwork ? t("ch.noNetwork") : t(`conn.${s}`);
  el.dataset.state = s;
  el.dataset.network = noNetwork ? "down" : "up";
  el.title = label;
  clear(el).append(
    h("span", { class: "c-dot", "aria-hidden": "true" }),
    h("span", { class: "c-connection-text" }, label),
  );
}

/** Put one view on the page; `draw()` builds it again when the language changes. */
function show(c, name, draw) {
  const paint = () => {
    document.title = `${t("ch.title")} · OrderChat`;
    clear(root).append(
      header(c),
      h("main", { class: "chat-main", testid: "chat-page", dataset: { view: name } }, draw()),
    );
  };
  paint();
  c.redraw = paint;
}

function showLoading(c) {
  show(c, "loading", () =>
    h("div", { class: "c-center" }, h("p", { class: "c-loading", role: "status" }, t("ch.loading"))),
  );
}

function showError(c, err, retry) {
  const again = () => {
    c.retry = null;
    showLoading(c);
    retry();
  };
  c.retry = again;
  show(c, "error", () =>
    h(
      "div",
      { class: "c-center" },
      h(
        "section",
        { class: "c-notice", role: "alert", testid: "load-failed" },
        h("h1", null, t("ch.error.title")),
        h("p", null, errorText(err)),
        h("p", { class: "c-retry-hint" }, t("ch.retrying")),
        h(
          "button",
          { class: "btn btn-primary", type: "button", testid: "load-retry", on: { click: again } },
          t("common.retry"),
        ),
      ),
    ),
  );
}

function showResumeFailed(c) {
  const onward = () => {
    showLoading(c);
    begin(c).catch((err) => showError(c, err, () => begin(c)));
  };
  show(c, "resume-failed", () => resumeFailedView({ onward }));
}

function showStart(c) {
  closeChat(c);
  c.generation += 1;
  show(c, "start", () =>
    startView({
      params: c.params,
      body: () => ({ ...origin(c.params), language: getLang(), device: deviceLabel() }),
      onStarted: (result) => started(c, result),
    }),
  );
}

/** The start form's answer: a session for this device and the first consult. */
async function started(c, result) {
  setSession({ token: result.token, user: result.user, expires_ts: result.expires_ts });
  await setMediaCookie().catch((err) => console.warn("media cookie not set", err));
  enter(c, getSession() || result);
  if (result.consult) {
    c.consults = [result.consult];
    await openConsult(c, result.consult.id, result.consult);
  } else {
    await loadHome(c, true);
  }
}

function showHome(c) {
  closeChat(c);
  rememberConsult(null);
  const draw = () =>
    homeView({
      me: c.session.user,
      consults: c.consults,
      orders: c.orders,
      embed: c.params.embed,
      onOpen: (id) => openConsult(c, id),
      onNew: () => newConsult(c),
      extra: emailLinkButton(c),
    });
  show(c, "home", draw);
  c.homeRedraw = c.redraw;
}

/** Another consult, from the list: it carries where the visitor came from this time. */
async function newConsult(c) {
  const consult = await api("/api/consults", { method: "POST", body: origin(c.params) });
  c.consults = newestFirst([consult, ...c.consults.filter((x) => x.id !== consult.id)]);
  await openConsult(c, consult.id, consult);
}

function closeChat(c) {
  if (c.chat) c.chat.destroy();
  c.chat = null;
  c.opening = null;
  c.buffered = [];
}

/** Show one consult's conversation: its history, then its live events. */
async function openConsult(c, id, known) {
  const generation = ++c.generation;
  closeChat(c);
  rememberConsult(id);
  let consult = known || c.consults.find((x) => x.id === id);
  try {
    if (!consult) consult = await api(`/api/consults/${encodeURIComponent(id)}`);
  } catch (err) {
    if (generation !== c.generation) return;
    if (err instanceof ApiError && err.status === 404) {
      rememberConsult(null);
      await loadHome(c, false);
      return;
    }
    handleLoadError(c, err, () => openConsult(c, id));
    return;
  }
  const convId = consultConv(consult);
  c.opening = convId;
  c.buffered = [];
  const [conv, page] = await Promise.all([
    api(`/api/conversations/${encodeURIComponent(convId)}`).catch((err) => {
      console.warn("conversation not loaded", err);
      return null;
    }),
    api(`/api/conversations/${encodeURIComponent(convId)}/messages?limit=50`).catch((err) => err),
  ]);
  if (generation !== c.generation) return;
  if (page instanceof Error || !page) {
    handleLoadError(c, page, () => openConsult(c, id));
    return;
  }
  const chat = new ConsultChat({
    consult,
    conv: conv || { id: convId, kind: "consult", members: [], member_reads: {}, read_seq: 0 },
    me: c.session.user,
    realtime: c.realtime,
    embed: c.params.embed,
    verified: c.orders.length > 0,
    onBack: () => {
      showLoading(c);
      loadHome(c, false);
    },
    extra: () => emailLinkButton(c),
  });
  c.chat = chat;
  show(c, "consult", () => chat.el);
  chat.relabel();
  chat.mount(page.messages || []);
  const buffered = c.buffered;
  c.buffered = [];
  c.opening = null;
  for (const frame of buffered) chat.applyFrame(frame);
  // A language switch words the header and the consult again, keeping the reader's place.
  c.redraw = () => {
    document.title = `${t("ch.title")} · OrderChat`;
    root.replaceChild(header(c), root.firstChild);
    chat.relabel();
  };
}

main();
