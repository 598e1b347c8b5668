/**
 * The customer's page, opened from the shop's invitation link `/c#TOKEN`: the order's
 * status and progress, the conversation with the shop, the confirmations waiting for
 * the customer's decision, and the order's files. Everything updates live.
 *
 * Like the staff workspace, the page keeps its state in one object made at start
 * (`newPage`) and passed to every step; nothing here is a module-level variable.
 */

import { clear, h } from "./dom.js";
import { getLang, langSwitcher, t, tOr } from "./i18n.js";
import { fmtAddress, fmtBytes, fmtDateTime, fmtMoney } from "./format.js";
import { clearSession, deviceLabel, getSession, onSessionChange } from "./session.js";
import { ApiError, api, errorText, signInWithInvitation, storedSessionLives } from "./api.js";
import { newRef } from "./ref.js";
import { Realtime } from "./socket.js";
import { stateLabel } from "./workflow.js";
import { itemNameView } from "./products.js";
import { formDialog } from "./ui/dialogs.js";
import { orderProgress } from "./ui/progress.js";
import { icon } from "./ui/icons.js";
import "./ui/customer-strings.js";
import "./ui/customer-strings-webfix.js";
import { dropPush, onOpenRequest, registerServiceWorker } from "./pwa.js";
import { PushSwitch } from "./ui/push-switch.js";
import { notifyPrefsButton } from "./ui/notify-prefs.js";
import { pendingList, rememberTitles, storedTitles } from "./ui/offline.js";
import { revealMessage } from "./ui/jump.js";
import { MessageSearch, searchIcon } from "./ui/search.js";
import { CallManager } from "./ui/call.js";

const ORDER_KEY = "orderchat.customer.order";
const root = document.getElementById("app");

/**
 * Everything the page holds; one per page load, passed along as `c`.
 * `generation` counts the orders opened, so an answer for an order no longer open is dropped.
 * `jump` is the order and message a notification asked for, until it is shown.
 */
function newPage() {
  return {
    session: null,
    realtime: null,
    watching: false,
    orders: [],
    order: null,
    conv: null,
    events: new Map(),
    settledIssues: new Set(),
    confirmations: [],
    files: [],
    filesNext: null,
    filesTimer: null,
    timeline: null,
    composer: null,
    ready: false,
    buffered: [],
    generation: 0,
    view: null,
    progressOpen: false,
    redraw: null,
    retry: null,
    jump: null,
    members: null,
    calls: null,
    search: null,
    searchField: null,
    searchInput: null,
  };
}

/** What the shop lets this customer do on the open order (`allowed.actions`). */
function allowedActions(c) {
  const order = c.order;
  return (order && order.allowed && order.allowed.actions) || [];
}

/** A customer reads staff names they cannot look up: everyone from the shop is "the shop". */
class ShopMembers extends Map {
  get(id) {
    return super.get(id) || { id, username: "", display_name: t("c.shop"), roles: [], kind: "staff" };
  }
}

// --- start --------------------------------------------------------------------------

function takeFragmentToken() {
  const hash = location.hash;
  if (!hash || hash.length < 2) return null;
  // The token must not stay in the address bar, the history or a bookmark.
  history.replaceState(null, "", "/c");
  try {
    return decodeURIComponent(hash.slice(1));
  } catch {
    return hash.slice(1);
  }
}

/**
 * The order and message a clicked notification opens: `/c?order=<id>&seq=<n>`. The
 * fragment belongs to invitation tokens, so the query carries these.
 * @param {URLSearchParams} params
 * @returns {{order: string, seq: number|null}|null}
 */
function notificationTarget(params) {
  const order = params.get("order");
  if (!order) return null;
  const seq = Number(params.get("seq"));
  return { order, seq: Number.isInteger(seq) && seq > 0 ? seq : null };
}

function takeNotificationTarget() {
  const target = notificationTarget(new URLSearchParams(location.search));
  // Read once: a reload shows the order as it is then, not the notification again.
  if (location.search) history.replaceState(null, "", `/c${location.hash}`);
  return target;
}

/** A notification clicked while this page is open: show its order and message here. */
function goToTarget(c, target, url) {
  if (!c.ready || !c.order) {
    c.jump = target;
    return;
  }
  if (c.order.id === target.order) {
    if (target.seq) revealInOrder(c, target.seq);
  } else if (c.orders.some((o) => o.id === target.order)) {
    c.jump = target;
    showLoading(c);
    openOrder(c, target.order);
  } else {
    // An order newer than this page's list: a fresh load reads the list again.
    location.assign(url.href);
  }
}

function revealInOrder(c, seq) {
  const generation = c.generation;
  return revealMessage({ timeline: () => c.timeline, active: () => c.generation === generation }, seq);
}

function main() {
  const c = newPage();
  c.jump = takeNotificationTarget();
  onOpenRequest((url) => {
    const target = notificationTarget(url.searchParams);
    if (target) goToTarget(c, target, url);
  });
  registerServiceWorker();
  window.addEventListener("langchange", () => {
    if (c.redraw) c.redraw();
    document.documentElement.lang = getLang();
  });
  // A new invitation link opened in this tab only changes the fragment: start over with it.
  window.addEventListener("hashchange", () => {
    if (location.hash.length > 1) location.reload();
  });
  showLoading(c);
  begin(c, takeFragmentToken()).catch((err) => {
    console.warn("the page failed to start", err);
    showError(c, err, () => begin(c, null));
  });
}

async function begin(c, token) {
  let session;
  if (token) {
    try {
      session = await signInWithInvitation(token);
      rememberOrder(session.order || null);
    } catch (err) {
      if (err instanceof ApiError && err.code === "network") {
        showError(c, err, () => begin(c, token));
      } else {
        showExpired(c);
      }
      return;
    }
  } else {
    session = getSession();
    if (!session || !session.user || session.user.kind !== "customer") {
      showExpired(c);
      return;
    }
    if (!(await storedSessionLives())) {
      showExpired(c);
      return;
    }
  }
  c.session = session;
  if (!c.watching) {
    c.watching = true;
    watchSession(c);
  }
  if (!c.realtime) startRealtime(c);
  await loadOrders(c);
}

function watchSession(c) {
  onSessionChange((next) => {
    if (!c.session) return;
    if (!next) {
      stopRealtime(c);
      showExpired(c);
    } else if (next.user.id !== c.session.user.id) {
      // Another customer's link was opened in another tab: show theirs here too.
      location.reload();
    }
  });
}

function startRealtime(c) {
  const realtime = new Realtime({
    getToken: () => (c.session ? c.session.token : null),
    getUserId: () => (c.session ? c.session.user.id : null),
    device: deviceLabel(),
  });
  c.realtime = realtime;
  c.calls = new CallManager({
    realtime,
    me: c.session.user,
    nameOf: (id) => callName(c, id),
    userOf: (id) => (c.members ? c.members.get(id) : null),
    titleOf: (conv) => {
      const order = c.orders.find((o) => o.conv === conv);
      return order ? order.number : null;
    },
    membersOf: (conv) => (c.conv && c.conv.id === conv ? c.conv.members : null),
    // A customer's calls always ring the shop: no staff-only choice, no other customer.
    staff: false,
  });
  realtime.addEventListener("state", () => renderConnection(c));
  realtime.addEventListener("frame", (event) => {
    if (c.ready) applyFrame(c, event.detail);
    else c.buffered.push(event.detail);
  });
  let welcomed = false;
  let stale = false;
  realtime.addEventListener("welcome", () => {
    // A load that failed while the server was out of reach is tried again now.
    if (c.retry) {
      const retry = c.retry;
      c.retry = null;
      retry();
    }
    // A connection that could not resume (no backlog follows) may have missed events.
    if (c.ready && (stale || (welcomed && !realtime.resumed))) reloadAll(c);
    welcomed = true;
    stale = false;
  });
  realtime.addEventListener("reset", () => {
    stale = true;
  });
  realtime.addEventListener("outbox", () => {
    showPending(c);
    keepPendingTitles(c);
  });
  realtime.addEventListener("signedout", () => {
    // The session is over on the server, and its push subscription with it.
    if (c.session) dropPush(c.session.user.id);
    clearSession();
    showExpired(c);
  });
  realtime.start();
}

function stopRealtime(c) {
  if (c.calls) c.calls.destroy();
  c.calls = null;
  if (c.realtime) c.realtime.stop();
}

/** A name in a call: the customer's own, the shop's people's when known, else "the shop". */
function callName(c, id) {
  const me = c.session && c.session.user;
  if (me && id === me.id) return me.display_name || t("c.shop");
  const user = c.members ? c.members.get(id) : null;
  return (user && user.display_name) || t("c.shop");
}

async function loadOrders(c) {
  let orders;
  try {
    const found = await api("/api/orders?limit=100");
    orders = found.orders || [];
  } catch (err) {
    handleLoadError(c, err, () => loadOrders(c));
    return;
  }
  c.orders = orders;
  if (!orders.length) {
    showMessage(c, t("c.noOrder"));
    return;
  }
  let chosen;
  try {
    chosen = sessionStorage.getItem(ORDER_KEY);
  } catch {
    chosen = null;
  }
  const wanted = c.jump && orders.find((o) => o.id === c.jump.order);
  if (!wanted) c.jump = null;
  const order = wanted || orders.find((o) => o.id === chosen) || orders[0];
  await openOrder(c, order.id);
}

function handleLoadError(c, err, retry) {
  if (err instanceof ApiError && err.status === 401) {
    stopRealtime(c);
    showExpired(c);
  } else {
    showError(c, err, retry);
  }
}

/** The order to open after a reload, or the one an invitation was made for. */
function rememberOrder(orderId) {
  try {
    if (orderId) sessionStorage.setItem(ORDER_KEY, orderId);
    else sessionStorage.removeItem(ORDER_KEY);
  } catch {
    // Only a convenience for reloads.
  }
}

// --- one order --------------------------------------------------------------------

async function openOrder(c, orderId) {
  c.generation += 1;
  const generation = c.generation;
  c.ready = false;
  c.retry = null;
  rememberOrder(orderId);
  let order;
  try {
    // The order carries its workflow (`workflow_detail`): the progress needs nothing else.
    order = await api(`/api/orders/${encodeURIComponent(orderId)}`);
  } catch (err) {
    handleLoadError(c, err, () => openOrder(c, orderId));
    return;
  }
  if (generation !== c.generation) return;
  c.order = order;
  if (c.search) c.search.scopeChanged();
  c.events = new Map();
  c.settledIssues = new Set();
  c.confirmations = [];
  c.files = [];
  c.filesNext = null;
  if (c.timeline) c.timeline.destroy();
  if (c.composer) c.composer.destroy();
  c.timeline = null;
  c.composer = null;
  buildView(c);
  const [conv, messages] = await Promise.all([
    api(`/api/conversations/${encodeURIComponent(order.conv)}`).catch((err) => {
      console.warn("conversation not loaded", err);
      return null;
    }),
    loadHistory(order.conv).catch((err) => err),
    loadConfirmations(c),
    loadFiles(c, false),
  ]);
  if (generation !== c.generation) return;
  if (messages instanceof Error || !Array.isArray(messages)) {
    handleLoadError(c, messages, () => openOrder(c, orderId));
    return;
  }
  c.conv = conv || { id: order.conv, kind: "order", members: [], member_reads: {}, read_seq: 0 };
  for (const m of messages) noteMessage(c, m);
  renderProgress(c);
  await mountChat(c, messages, generation);
  if (generation !== c.generation) return;
  c.ready = true;
  const buffered = c.buffered;
  c.buffered = [];
  for (const frame of buffered) applyFrame(c, frame);
  keepPendingTitles(c);
  const jump = c.jump;
  c.jump = null;
  if (jump && jump.order === order.id && jump.seq) revealInOrder(c, jump.seq);
}

/**
 * The order's whole history: progress needs every order event, not just the newest page.
 * A first page that fails fails the whole load (an empty chat would look like no
 * messages); a later page that fails leaves what was read.
 */
async function loadHistory(convId) {
  const all = [];
  let after = 0;
  for (let page = 0; page < 10; page += 1) {
    let found;
    try {
      found = await api(`/api/conversations/${encodeURIComponent(convId)}/messages?after=${after}&limit=200`);
    } catch (err) {
      if (page === 0) throw err;
      console.warn("history not loaded", err);
      break;
    }
    const list = found.messages || [];
    all.push(...list);
    if (list.length < 200) break;
    after = list[list.length - 1].seq;
  }
  return all;
}

async function refetchOrder(c) {
  const order = await api(`/api/orders/${encodeURIComponent(c.order.id)}`);
  if (c.order && order.id === c.order.id) c.order = order;
}

async function reloadAll(c) {
  if (!c.order) return;
  const generation = c.generation;
  try {
    await refetchOrder(c);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
  }
  if (generation !== c.generation) return;
  let messages;
  try {
    messages = await loadHistory(c.order.conv);
  } catch (err) {
    console.warn("history not reloaded", err);
    return;
  }
  if (generation !== c.generation) return;
  c.events = new Map();
  c.settledIssues = new Set();
  for (const m of messages) noteMessage(c, m);
  if (c.timeline) c.timeline.setMessages(messages);
  renderHeader(c);
  renderSummary(c);
  renderProgress(c);
  await Promise.all([loadConfirmations(c), loadFiles(c, false)]);
}

function noteMessage(c, m) {
  if (m.kind === "order_event" && m.meta) {
    c.events.set(m.seq, m);
    if (m.meta.event === "defect_resolved" && m.meta.details && m.meta.details.issue) {
      c.settledIssues.add(m.meta.details.issue);
    }
  }
}

// --- live events --------------------------------------------------------------------

function applyFrame(c, frame) {
  const order = c.order;
  if (!order) return;
  if (frame.op === "order") {
    if (frame.order && frame.order.id === order.id) {
      // The event leaves out `allowed` and `workflow_detail`: keep the last ones.
      c.order = { ...order, ...frame.order };
      renderHeader(c);
      renderSummary(c);
      renderProgress(c);
    } else if (frame.order) {
      c.orders = c.orders.map((o) => (o.id === frame.order.id ? frame.order : o));
    }
    return;
  }
  if (frame.conv !== order.conv) return;
  switch (frame.op) {
    case "message":
      if (c.timeline) c.timeline.add(frame);
      noteMessage(c, frame);
      if (frame.kind === "order_event") {
        renderProgress(c);
        const event = frame.meta && frame.meta.event;
        if (event && event.startsWith("confirmation_")) loadConfirmations(c);
      }
      if (frame.attachments && frame.attachments.length) refreshFilesSoon(c);
      break;
    case "recalled":
    case "media":
      if (c.timeline) c.timeline.applyFrame(frame);
      refreshFilesSoon(c);
      break;
    case "read":
      if (c.timeline) c.timeline.applyFrame(frame);
      break;
    case "member":
      if (frame.conversation) c.conv = { ...c.conv, members: frame.conversation.members };
      if ((frame.action === "removed" || frame.action === "left") && (frame.users || []).includes(c.session.user.id)) {
        stopRealtime(c);
        showExpired(c);
      } else if (c.timeline) {
        c.timeline.applyFrame(frame);
      }
      break;
    default:
      if (c.timeline) c.timeline.applyFrame(frame);
  }
}

function refreshFilesSoon(c) {
  clearTimeout(c.filesTimer);
  c.filesTimer = setTimeout(() => loadFiles(c, false), 600);
}

// --- page views ---------------------------------------------------------------------

function page(c, ...children) {
  clear(root);
  c.view = null;
  root.append(...children);
}

function simpleHeader() {
  return h(
    "header",
    { class: "c-header" },
    h("div", { class: "c-header-main" }, h("span", { class: "c-brand" }, "OrderChat")),
    h("div", { class: "c-header-tools" }, langSwitcher()),
  );
}

/** A page of one centred notice; `content()` builds it again when the language changes. */
function showCentered(c, content) {
  const draw = () => page(c, simpleHeader(), h("main", { class: "c-center" }, content()));
  draw();
  c.redraw = draw;
}

function showLoading(c) {
  document.title = "OrderChat";
  showCentered(c, () => h("p", { class: "c-loading", role: "status" }, t("c.loading")));
}

function showExpired(c) {
  c.retry = null;
  c.generation += 1;
  c.ready = false;
  document.title = "OrderChat";
  showCentered(c, () =>
    h(
      "section",
      { class: "c-notice", testid: "link-expired", role: "alert" },
      // Drawn, not a character: a glyph the phone's fonts lack shows as an empty box.
      h("div", { class: "c-notice-icon", "aria-hidden": "true" }, icon("linkOff")),
      h("h1", null, t("c.expired.title")),
      h("p", null, t("c.expired.text")),
    ),
  );
}

function showError(c, err, retry) {
  const again = () => {
    c.retry = null;
    showLoading(c);
    retry();
  };
  // Tried again by itself at the next `welcome`, when the server answers again.
  c.retry = again;
  showCentered(c, () =>
    h(
      "section",
      { class: "c-notice", role: "alert", testid: "load-failed" },
      h("h1", null, t(c.realtime && c.realtime.networkDown() ? "pwa.offline.noNetwork" : "c.error.title")),
      h("p", null, errorText(err)),
      waitingToSend(c),
      h("p", { class: "c-retry-hint" }, t("c.wf.retrying")),
      h(
        "button",
        { class: "btn btn-primary", type: "button", testid: "load-retry", on: { click: again } },
        t("common.retry"),
      ),
    ),
  );
}

/** The sends still waiting, for a page that could not load its order (opened offline). */
function waitingToSend(c) {
  const pending = c.realtime ? c.realtime.pending() : [];
  if (!pending.length || !c.session) return null;
  const kept = storedTitles(c.session.user.id);
  return h(
    "div",
    { class: "c-offline-pending", testid: "offline-notice" },
    h("p", null, t("pwa.offline.text")),
    pendingList(pending, (conv) => orderNumberOf(c, conv) || kept[conv] || t("pwa.offline.unknownConv")),
  );
}

function orderNumberOf(c, conv) {
  const order = c.orders.find((o) => o.conv === conv);
  return order ? order.number : null;
}

function keepPendingTitles(c) {
  if (c.session && c.realtime)
    rememberTitles(c.session.user.id, c.realtime.pending(), (conv) => orderNumberOf(c, conv));
}

function showMessage(c, text) {
  showCentered(c, () => h("section", { class: "c-notice" }, h("p", null, text)));
}

function buildView(c) {
  const v = {
    number: h("h1", { class: "c-number", testid: "order-number" }),
    status: h("span", { class: "c-status", testid: "order-status" }),
    connection: h("span", { class: "c-connection", testid: "connection", role: "status" }),
    me: h("span", { class: "c-me", testid: "me" }),
    switcher: h("span", { class: "c-switcher" }),
    calls: h("span", { class: "c-calls" }),
    summary: h("div", { class: "c-summary-body" }),
    summaryTitle: h("h2", null),
    progressTitle: h("h2", null),
    progress: h("div", { class: "c-progress" }),
    confSection: h("section", { class: "c-section c-confirmations", hidden: true }),
    chatTitle: h("h2", null),
    chat: h("div", { class: "c-chat-body" }),
    filesTitle: h("h2", null),
    files: h("ul", { class: "c-files" }),
    filesMore: h("div", { class: "c-files-more" }),
    push: new PushSwitch({ userId: c.session.user.id }),
    notifyOpen: notifyPrefsButton({ me: c.session.user }),
  };
  c.view = v;
  const header = h(
    "header",
    { class: "c-header" },
    h("div", { class: "c-header-main" }, v.number, v.status),
    h("div", { class: "c-header-tools" }, v.calls, v.connection, v.switcher, langSwitcher()),
  );
  const main = h(
    "main",
    { class: "c-main", testid: "customer-page" },
    h(
      "div",
      { class: "c-side" },
      h("section", { class: "c-section c-summary" }, v.summaryTitle, v.me, v.summary),
      h("section", { class: "c-section c-progress-section" }, v.progressTitle, v.progress),
      v.confSection,
      h("section", { class: "c-section c-files-section", testid: "order-files" }, v.filesTitle, v.files, v.filesMore),
      // A setting of this device, not part of the order: last.
      h("section", { class: "c-section c-push" }, v.push.el, v.notifyOpen),
    ),
    h("section", { class: "c-section c-chat" }, v.chatTitle, searchField(c), c.search.el, v.chat),
  );
  clear(root);
  root.append(header, main);
  c.redraw = () => {
    renderHeader(c);
    renderSummary(c);
    renderProgress(c);
    renderConfirmations(c);
    renderFiles(c);
    renderConnection(c);
    v.chatTitle.textContent = t("c.chat");
    c.searchInput.placeholder = t("search.placeholderCustomer");
    c.searchInput.setAttribute("aria-label", t("search.label"));
    v.push.relabel();
    v.notifyOpen.textContent = t("np.open");
  };
  c.redraw();
}

// --- search ---------------------------------------------------------------------------

/**
 * The search field over the conversation, made once per page so that a search
 * outlives switching orders; the server finds only this customer's orders' messages
 * that the customer may read.
 */
function searchField(c) {
  if (!c.searchField) {
    const input = h("input", {
      type: "search",
      class: "c-search-input",
      testid: "search-input",
      placeholder: t("search.placeholderCustomer"),
      "aria-label": t("search.label"),
      autocomplete: "off",
      enterkeyhint: "search",
    });
    c.searchInput = input;
    c.search = new MessageSearch({
      input,
      me: c.session.user,
      scope: () =>
        c.order && c.orders.length > 1
          ? { order: c.order.id, label: t("search.hereOrder", { number: c.order.number }) }
          : null,
      titleOf: (result) => (result.order && result.order.number) || orderNumberOf(c, result.conversation.id) || "",
      onOpen: (result) => openSearchResult(c, result),
      collapseOnOpen: true,
    });
    c.searchField = h("div", { class: "c-search", role: "search" }, searchIcon(), input);
  }
  return c.searchField;
}

/** Show a result's message: in the open order's chat, or in its own order's. */
function openSearchResult(c, result) {
  const seq = result.message.seq;
  const conv = result.conversation.id;
  if (c.order && c.order.conv === conv) {
    revealInOrder(c, seq);
    return;
  }
  const order = c.orders.find((o) => o.conv === conv) || (result.order ? { id: result.order.id } : null);
  if (!order) return;
  const url = new URL(`/c?order=${encodeURIComponent(order.id)}&seq=${seq}`, location.origin);
  goToTarget(c, { order: order.id, seq }, url);
}

function renderConnection(c) {
  const v = c.view;
  if (!v || !c.realtime) return;
  const s = c.realtime.state;
  const noNetwork = s === "offline" && c.realtime.networkDown();
  const label = noNetwork ? t("c.wf.noNetwork") : t(`conn.${s}`);
  v.connection.dataset.state = s;
  v.connection.dataset.network = noNetwork ? "down" : "up";
  v.connection.title = label;
  clear(v.connection).append(
    h("span", { class: "c-dot", "aria-hidden": "true" }),
    h("span", { class: "c-connection-text" }, label),
  );
}

function renderHeader(c) {
  const v = c.view;
  const order = c.order;
  if (!v || !order) return;
  document.title = `${t("c.title", { number: order.number })} · OrderChat`;
  v.number.textContent = order.number;
  v.status.textContent = stateLabel(order, order.status);
  v.status.dataset.status = order.status;
  v.me.textContent = t("c.hello", { name: c.session.user.display_name });
  clear(v.calls);
  if (c.calls) v.calls.append(c.calls.buttons({ id: order.conv }));
  clear(v.switcher);
  if (c.orders.length > 1) {
    const change = (e) => {
      showLoading(c);
      openOrder(c, e.target.value);
    };
    const select = h(
      "select",
      { class: "c-order-switch", testid: "order-switch", "aria-label": t("c.switchOrder"), on: { change } },
      c.orders.map((o) => h("option", { value: o.id, selected: o.id === order.id }, o.number)),
    );
    select.value = order.id;
    v.switcher.append(select);
  }
}

function row(label, ...value) {
  return h("div", { class: "c-row" }, h("dt", null, label), h("dd", null, ...value));
}

function renderSummary(c) {
  const v = c.view;
  const order = c.order;
  if (!v || !order) return;
  v.summaryTitle.textContent = t("c.summary");
  const items = h(
    "ul",
    { class: "c-items" },
    (order.items || []).map((item) =>
      h(
        "li",
        { class: "c-item", testid: "order-item" },
        itemNameView(order, item, "c-item-name"),
        h(
          "span",
          { class: "c-item-qty" },
          t("c.qtyPrice", { qty: item.quantity, price: fmtMoney(item.unit_price_cents, order.currency) }),
        ),
      ),
    ),
  );
  const payText = tOr(`c.pay.${order.payment_status}`, order.payment_status);
  const rows = [
    row(t("c.total"), h("strong", null, fmtMoney(order.total_cents, order.currency))),
    row(
      t("c.payment"),
      h("span", { class: "c-pill", testid: "order-payment", dataset: { status: order.payment_status } }, payText),
      order.payment_status === "partial"
        ? ` ${t("c.paidOf", { paid: fmtMoney(order.paid_cents, order.currency) })}`
        : null,
    ),
  ];
  if (order.carrier || order.tracking_no) {
    rows.push(row(t("c.shipping"), [order.carrier, order.tracking_no].filter(Boolean).join(" ")));
  }
  if (order.eta_ts) rows.push(row(t("c.eta"), fmtDateTime(order.eta_ts)));
  const address = fmtAddress(order.address);
  if (address) rows.push(row(t("c.address"), address));
  const invoiceParts = [
    h(
      "span",
      { testid: "order-invoice", dataset: { status: order.invoice_status } },
      tOr(`c.inv.${order.invoice_status}`, order.invoice_status),
    ),
  ];
  if (allowedActions(c).includes("request_invoice") && order.invoice_status === "none") {
    invoiceParts.push(
      " ",
      h(
        "button",
        { class: "btn btn-small", type: "button", testid: "request-invoice", on: { click: () => requestInvoice(c) } },
        t("c.requestInvoice"),
      ),
    );
  }
  rows.push(row(t("c.invoice"), ...invoiceParts));
  clear(v.summary).append(items, h("dl", { class: "c-facts" }, rows));
}

function renderProgress(c) {
  const v = c.view;
  if (!v || !c.order) return;
  v.progressTitle.textContent = t("c.progress");
  const toggle = () => {
    c.progressOpen = !c.progressOpen;
    renderProgress(c);
  };
  clear(v.progress).append(
    orderProgress({
      audience: "customer",
      order: c.order,
      events: Array.from(c.events.values()),
      expanded: c.progressOpen,
      onToggle: toggle,
      extra: (m) => remedyChoice(c, m),
    }),
  );
}

/** Under a defect the shop found: the customer's choice of remedy, until one is chosen. */
function remedyChoice(c, m) {
  const details = m.meta.details || {};
  if (m.meta.event !== "defect_found" || !details.issue || c.settledIssues.has(details.issue)) return null;
  if (!allowedActions(c).includes("choose_defect_remedy")) return null;
  return h(
    "div",
    { class: "ot-actions" },
    h("span", null, t("c.defect.choose")),
    ["exchange", "refund"].map((outcome) =>
      h(
        "button",
        {
          class: "btn btn-small",
          type: "button",
          testid: `defect-${outcome}`,
          on: { click: () => chooseRemedy(c, details.issue, outcome) },
        },
        t(`c.defect.${outcome}`),
      ),
    ),
  );
}

// --- conversation -------------------------------------------------------------------

async function mountChat(c, messages, generation) {
  const v = c.view;
  v.chatTitle.textContent = t("c.chat");
  let Timeline;
  let Composer;
  try {
    [{ Timeline }, { Composer }] = await Promise.all([import("./ui/timeline.js"), import("./ui/composer.js")]);
  } catch (err) {
    console.warn("the conversation views did not load", err);
    clear(v.chat).append(h("p", { class: "c-empty" }, t("c.chatUnavailable")));
    return;
  }
  // The names of the shop's people on this order; without them, "Shop" stands in.
  let contacts = [];
  try {
    contacts = (await api("/api/users")).users || [];
  } catch (err) {
    console.warn("the shop's names are unavailable", err);
  }
  if (generation !== c.generation) return;
  const me = c.session.user;
  const members = new ShopMembers([[me.id, me], ...contacts.map((u) => [u.id, u])]);
  c.members = members;
  const timeline = new Timeline({
    me,
    members,
    conv: c.conv,
    realtime: c.realtime,
    onReply: (message) => c.composer && c.composer.setReply(message),
    canRecall: (message) => message.sender === me.id && message.kind === "text",
  });
  const composer = new Composer({
    conv: c.conv,
    realtime: c.realtime,
    members: new Map([[me.id, me]]),
    roles: [],
    me,
  });
  composer.attachDropTarget(timeline.el);
  c.timeline = timeline;
  c.composer = composer;
  // Attached first, so the list can scroll to the newest message.
  clear(v.chat).append(timeline.el, composer.el);
  timeline.setMessages(messages);
  showPending(c);
}

function showPending(c) {
  if (!c.timeline || !c.realtime || !c.order) return;
  c.timeline.showPending(c.realtime.pending().filter((f) => f.conv === c.order.conv));
}

// --- confirmations ------------------------------------------------------------------

async function loadConfirmations(c) {
  if (!c.order) return;
  const generation = c.generation;
  try {
    const found = await api(`/api/orders/${encodeURIComponent(c.order.id)}/confirmations`);
    if (generation !== c.generation) return;
    c.confirmations = found.items || [];
  } catch (err) {
    console.warn("confirmations not loaded", err);
    return;
  }
  renderConfirmations(c);
}

function versionState(version) {
  return version.state === "pending" ? "proposed" : version.state;
}

function renderAttachmentLinks(attachments) {
  const list = (attachments || []).filter((a) => a && typeof a === "object" && (a.url || a.id));
  if (!list.length) return null;
  return h(
    "ul",
    { class: "c-version-files" },
    list.map((a) => {
      const url = a.url || `/api/media/${encodeURIComponent(a.id)}`;
      const preview = a.preview && a.preview.status === "ready" && a.preview.url;
      const isImage = a.kind === "image" || String(a.type || "").startsWith("image/");
      return h(
        "li",
        null,
        h(
          "a",
          { href: url, target: "_blank", rel: "noopener" },
          isImage ? h("img", { src: preview || url, alt: a.name || "", loading: "lazy" }) : null,
          h("span", null, a.name || t("c.open")),
        ),
      );
    }),
  );
}

function renderConfirmations(c) {
  const v = c.view;
  if (!v) return;
  const items = c.confirmations;
  const section = v.confSection;
  clear(section);
  section.removeAttribute("data-testid");
  if (!items.length) {
    section.hidden = true;
    return;
  }
  section.hidden = false;
  section.setAttribute("data-testid", "confirmations");
  const canDecide = !c.order.allowed || allowedActions(c).includes("decide_version");
  const pending = (item) => item.versions.some((ver) => ver.state === "pending");
  const summary = confirmationSummary(items, pending);
  // Decisions the customer owes move to the top of the order column.
  section.classList.toggle("c-has-open", summary.waiting > 0);
  section.append(
    h(
      "h2",
      null,
      t("c.confirmations"),
      " ",
      summary.badges.map(({ key, count, tone }) =>
        h(
          "span",
          { class: ["c-badge", `c-badge-${tone}`], testid: "confirmations-badge", dataset: { state: key } },
          t(`c.conf.${key}.${count === 1 ? "one" : "other"}`, { count }),
        ),
      ),
    ),
  );
  const list = h("ul", { class: "c-conf-list" });
  // What waits for the customer comes first; the rest keep the shop's order.
  const waiting = (item) => (pending(item) ? 0 : 1);
  const ordered = items
    .map((item, index) => ({ item, index }))
    .sort((a, b) => waiting(a.item) - waiting(b.item) || a.index - b.index);
  for (const { item } of ordered) {
    const versions = [...item.versions].sort((a, b) => b.number - a.number);
    list.append(
      h(
        "li",
        { class: "c-conf", testid: "confirmation", dataset: { itemId: item.id, status: item.status } },
        h(
          "div",
          { class: "c-conf-head" },
          h("h3", { class: "c-conf-title" }, item.title),
          h("span", { class: "c-tag" }, tOr(`c.kind.${item.kind}`, item.kind)),
          h("span", { class: "c-tag" }, item.required ? t("c.required") : t("c.optional")),
          h("span", { class: ["c-pill", `c-pill-${item.status}`] }, tOr(`c.istate.${item.status}`, t("c.istate.open"))),
        ),
        h(
          "ol",
          { class: "c-versions" },
          versions.map((ver) => renderVersion(c, item, ver, canDecide)),
        ),
      ),
    );
  }
  section.append(list);
}

/**
 * What the confirmations header says, each part true on its own: how many decisions
 * wait for the customer, how many items were rejected (the shop proposes again), how
 * many required items have nothing to decide yet. "All approved" only when every
 * required item is approved and nothing else is open or rejected.
 * @param {object[]} items
 * @param {(item: object) => boolean} pending  whether an item has a version to decide
 * @returns {{waiting: number, badges: {key: string, count: number, tone: string}[]}}
 */
function confirmationSummary(items, pending) {
  const waiting = items.filter(pending).length;
  const rejected = items.filter((i) => !pending(i) && i.status === "rejected").length;
  const notYet = items.filter((i) => i.required && !pending(i) && i.status !== "approved" && i.status !== "rejected");
  const badges = [];
  if (waiting) badges.push({ key: "waiting", count: waiting, tone: "open" });
  if (rejected) badges.push({ key: "rejected", count: rejected, tone: "open" });
  if (notYet.length) badges.push({ key: "notYet", count: notYet.length, tone: "open" });
  if (!badges.length) {
    const allApproved = items.every((i) => i.status === "approved");
    badges.push({ key: allApproved ? "allApproved" : "requiredApproved", count: 1, tone: "done" });
  }
  return { waiting, badges };
}

function renderVersion(c, item, ver, canDecide) {
  const vstate = versionState(ver);
  const parts = [
    h(
      "div",
      { class: "c-version-head" },
      h("strong", null, t("c.version", { n: ver.number })),
      h("span", { class: ["c-pill", `c-pill-${vstate}`] }, tOr(`c.vstate.${vstate}`, t("c.vstate.proposed"))),
      h("time", { class: "c-muted" }, t("c.proposedAt", { time: fmtDateTime(ver.proposed_ts) })),
    ),
    h("p", { class: "c-version-text" }, ver.text),
    renderAttachmentLinks(ver.attachments),
  ];
  if (ver.decision) {
    parts.push(
      h(
        "p",
        { class: "c-version-decision" },
        t("c.decidedBy", {
          decision: tOr(`c.vstate.${ver.decision}`, t("c.vstate.approved")),
          time: ver.decided_ts ? fmtDateTime(ver.decided_ts) : "",
        }),
        ver.comment ? h("q", null, ver.comment) : null,
      ),
    );
  }
  if (vstate === "proposed" && canDecide) {
    const button = (decision, cls, testid, label) =>
      h("button", { class: cls, type: "button", testid, on: { click: () => decide(c, item, ver, decision) } }, label);
    parts.push(
      h(
        "div",
        { class: "c-version-actions" },
        button("approved", "btn btn-primary", "approve-version", t("c.approve")),
        button("rejected", "btn btn-danger", "reject-version", t("c.reject")),
      ),
    );
  }
  return h(
    "li",
    {
      class: ["c-version", `c-version-${vstate}`],
      testid: "confirmation-version",
      dataset: { state: vstate, version: ver.number },
    },
    parts,
  );
}

/**
 * Approve or reject a version. One idempotency key per dialog: a retry after a lost
 * answer is the same decision, never a second one.
 */
function decide(c, item, ver, decision) {
  const approve = decision === "approved";
  const key = newRef();
  return formDialog({
    title: t(approve ? "c.approveTitle" : "c.rejectTitle", { title: item.title, n: ver.number }),
    intro: h("p", { class: "ver-text" }, ver.text),
    submitLabel: approve ? t("c.approve") : t("c.reject"),
    danger: !approve,
    fields: [
      {
        name: "comment",
        type: "textarea",
        rows: 3,
        maxlength: 2000,
        label: approve ? t("c.commentOptional") : t("c.comment"),
        placeholder: approve ? null : t("c.commentPlaceholder"),
        required: !approve,
      },
    ],
    onSubmit: async ({ comment }) => {
      const path = `/api/confirmations/${encodeURIComponent(item.id)}/versions/${ver.number}/decision`;
      const result = await api(path, { method: "POST", body: { decision, comment }, idempotencyKey: key });
      if (result && result.item) {
        c.confirmations = c.confirmations.map((i) => (i.id === result.item.id ? result.item : i));
        renderConfirmations(c);
      } else {
        await loadConfirmations(c);
      }
    },
  });
}

function requestInvoice(c) {
  const order = c.order;
  const key = newRef();
  return formDialog({
    title: t("c.requestInvoice"),
    submitLabel: t("c.submit"),
    fields: [
      { name: "title", label: t("c.invoiceTitle"), required: true, maxlength: 200 },
      { name: "tax_id", label: t("c.invoiceTaxId"), maxlength: 200 },
    ],
    onSubmit: async ({ title, tax_id: taxId }) => {
      const body = { title };
      if (taxId) body.tax_id = taxId;
      await api(`/api/orders/${encodeURIComponent(order.id)}/invoice`, { method: "POST", body, idempotencyKey: key });
      await refetchOrder(c);
      renderSummary(c);
    },
  });
}

function chooseRemedy(c, issueId, outcome) {
  const order = c.order;
  const choice = t(`c.defect.${outcome}`);
  const key = newRef();
  return formDialog({
    title: t("c.defect.confirm", { choice }),
    submitLabel: choice,
    fields: [],
    onSubmit: async () => {
      const path = `/api/orders/${encodeURIComponent(order.id)}/issues/${encodeURIComponent(issueId)}/settle`;
      await api(path, { method: "POST", body: { outcome }, idempotencyKey: key });
      c.settledIssues.add(issueId);
      renderProgress(c);
    },
  });
}

// --- files --------------------------------------------------------------------------

async function loadFiles(c, more) {
  if (!c.order) return;
  const generation = c.generation;
  const before = more && c.filesNext ? `&before=${c.filesNext}` : "";
  try {
    const found = await api(`/api/orders/${encodeURIComponent(c.order.id)}/files?limit=60${before}`);
    if (generation !== c.generation) return;
    c.files = more ? c.files.concat(found.files || []) : found.files || [];
    c.filesNext = found.next || null;
  } catch (err) {
    console.warn("files not loaded", err);
    return;
  }
  renderFiles(c);
}

function fileThumb(file) {
  const preview = file.preview && file.preview.status === "ready" && file.preview.url;
  if (file.kind === "image")
    return h("img", { class: "c-file-thumb", src: preview || file.url, alt: file.name, loading: "lazy" });
  if (preview) return h("img", { class: "c-file-thumb", src: preview, alt: file.name, loading: "lazy" });
  const ext = (file.name.split(".").pop() || "").slice(0, 4).toUpperCase();
  return h(
    "span",
    { class: ["c-file-icon", `c-file-icon-${file.kind}`], "aria-hidden": "true" },
    file.kind === "voice" ? "♪" : file.kind === "video" ? "▶" : ext || "FILE",
  );
}

function renderFiles(c) {
  const v = c.view;
  if (!v) return;
  v.filesTitle.textContent = t("c.files");
  clear(v.files);
  clear(v.filesMore);
  if (!c.files.length) {
    v.files.append(h("li", { class: "c-empty" }, t("c.filesEmpty")));
    return;
  }
  for (const file of c.files) {
    v.files.append(
      h(
        "li",
        { class: ["c-file", `c-file-${file.kind}`], testid: "order-file", dataset: { kind: file.kind, id: file.id } },
        h(
          "a",
          { class: "c-file-open", href: file.url, target: "_blank", rel: "noopener", title: file.name },
          fileThumb(file),
        ),
        h(
          "div",
          { class: "c-file-meta" },
          h("span", { class: "c-file-name" }, file.name),
          h("span", { class: "c-muted" }, `${fmtBytes(file.size)} · ${fmtDateTime(file.ts)}`),
        ),
        h(
          "a",
          { class: "c-file-download", href: file.url, download: file.name, testid: "order-file-download" },
          t("common.download"),
        ),
      ),
    );
  }
  if (c.filesNext) {
    v.filesMore.append(
      h(
        "button",
        { class: "btn btn-small", type: "button", on: { click: () => loadFiles(c, true) } },
        t("c.moreFiles"),
      ),
    );
  }
}

main();
