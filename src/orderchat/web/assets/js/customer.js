/**
 * The customer's page, opened from the shop's invitation link `/c#TOKEN`: the order's
 * status and progress, the conversation with the shop, the confirmations waiting for
 * the customer's decision, and the order's files. Everything updates live.
 */

import { clear, h } from "./dom.js";
import { addStrings, getLang, langSwitcher, pickLang, t, tOr } from "./i18n.js";
import { fmtBytes, fmtDateTime, fmtMoney } from "./format.js";
import { clearSession, deviceLabel, getSession, onSessionChange } from "./session.js";
import { ApiError, api, errorText, setMediaCookie, signInWithInvitation } from "./api.js";
import { Realtime } from "./socket.js";

addStrings({
  "zh-CN": {
    "c.title": "订单 {number}",
    "c.loading": "正在打开您的订单…",
    "c.expired.title": "链接已失效",
    "c.expired.text": "这个订单链接已过期或已失效。请联系商家，重新发送一个链接给您。",
    "c.error.title": "暂时无法打开订单",
    "c.noOrder": "没有找到与此链接对应的订单，请联系商家。",
    "c.hello": "您好，{name}",
    "c.switchOrder": "切换订单",
    "c.summary": "订单详情",
    "c.items": "商品",
    "c.qtyPrice": "{qty} × {price}",
    "c.total": "合计",
    "c.payment": "付款",
    "c.pay.unpaid": "未付款",
    "c.pay.partial": "部分付款",
    "c.pay.paid": "已付款",
    "c.pay.refunded": "已退款",
    "c.pay.partially_refunded": "部分退款",
    "c.paidOf": "已付 {paid}",
    "c.shipping": "物流",
    "c.carrier": "承运商",
    "c.tracking": "运单号",
    "c.eta": "预计送达",
    "c.address": "收货地址",
    "c.note": "备注",
    "c.invoice": "发票",
    "c.inv.none": "未申请",
    "c.inv.requested": "已申请",
    "c.inv.issued": "已开具",
    "c.requestInvoice": "申请发票",
    "c.invoiceTitle": "发票抬头",
    "c.invoiceTaxId": "税号（可选）",
    "c.invoiceRequested": "已提交发票申请。",
    "c.progress": "订单进度",
    "c.progressEmpty": "暂无进度。",
    "c.showAll": "查看全部 {count} 条",
    "c.showLess": "收起",
    "c.ev.order_created": "订单已创建",
    "c.ev.status_changed": "状态更新",
    "c.ev.address_changed": "地址已修改",
    "c.ev.interception_settled": "拦截结果",
    "c.ev.delay_notice": "延迟通知",
    "c.ev.defect_found": "发现问题",
    "c.ev.defect_resolved": "问题处理方案",
    "c.ev.refund_recorded": "退款",
    "c.ev.invoice_issued": "发票已开具",
    "c.ev.confirmation_proposed": "待您确认",
    "c.ev.confirmation_decided": "确认结果",
    "c.ev.other": "订单动态",
    "c.defect.exchange": "换货",
    "c.defect.refund": "退款",
    "c.defect.choose": "请选择处理方式：",
    "c.defect.confirm": "确定选择“{choice}”吗？",
    "c.chat": "与商家沟通",
    "c.chatUnavailable": "对话暂时无法加载，请刷新页面。",
    "c.shop": "商家",
    "c.confirmations": "待确认事项",
    "c.confOpen": "{count} 项待您确认",
    "c.confAllDone": "全部已确认",
    "c.required": "必需",
    "c.optional": "可选",
    "c.version": "第 {n} 版",
    "c.vstate.proposed": "待确认",
    "c.vstate.approved": "已确认",
    "c.vstate.rejected": "已驳回",
    "c.vstate.superseded": "已被新版本替代",
    "c.istate.open": "待提交",
    "c.istate.proposed": "待确认",
    "c.istate.approved": "已确认",
    "c.istate.rejected": "已驳回",
    "c.approve": "确认",
    "c.reject": "驳回",
    "c.approveTitle": "确认“{title}”第 {n} 版",
    "c.rejectTitle": "驳回“{title}”第 {n} 版",
    "c.comment": "意见",
    "c.commentOptional": "意见（可选）",
    "c.commentRequired": "请写明需要修改的地方。",
    "c.commentPlaceholder": "例如：颜色再深一点",
    "c.submit": "提交",
    "c.decidedBy": "{decision} · {time}",
    "c.proposedAt": "提交于 {time}",
    "c.files": "订单文件",
    "c.filesEmpty": "还没有文件。",
    "c.moreFiles": "加载更多",
    "c.open": "打开",
    "c.kind.material": "面料",
    "c.kind.colour": "颜色",
    "c.kind.logo_process": "Logo 工艺",
    "c.kind.size_chart": "尺码表",
    "c.kind.print": "印花",
    "c.kind.packaging": "包装",
    "c.kind.sample": "样品",
    "c.kind.other": "其他",
  },
  en: {
    "c.title": "Order {number}",
    "c.loading": "Opening your order…",
    "c.expired.title": "This link has expired",
    "c.expired.text": "This order link is no longer valid. Please ask the shop to send you a new one.",
    "c.error.title": "The order cannot be opened right now",
    "c.noOrder": "No order was found for this link. Please contact the shop.",
    "c.hello": "Hello, {name}",
    "c.switchOrder": "Switch order",
    "c.summary": "Order details",
    "c.items": "Items",
    "c.qtyPrice": "{qty} × {price}",
    "c.total": "Total",
    "c.payment": "Payment",
    "c.pay.unpaid": "Unpaid",
    "c.pay.partial": "Partly paid",
    "c.pay.paid": "Paid",
    "c.pay.refunded": "Refunded",
    "c.pay.partially_refunded": "Partly refunded",
    "c.paidOf": "{paid} paid",
    "c.shipping": "Shipping",
    "c.carrier": "Carrier",
    "c.tracking": "Tracking number",
    "c.eta": "Estimated delivery",
    "c.address": "Delivery address",
    "c.note": "Note",
    "c.invoice": "Invoice",
    "c.inv.none": "Not requested",
    "c.inv.requested": "Requested",
    "c.inv.issued": "Issued",
    "c.requestInvoice": "Request an invoice",
    "c.invoiceTitle": "Invoice title",
    "c.invoiceTaxId": "Tax ID (optional)",
    "c.invoiceRequested": "Your invoice request was sent.",
    "c.progress": "Progress",
    "c.progressEmpty": "No progress yet.",
    "c.showAll": "Show all {count}",
    "c.showLess": "Show less",
    "c.ev.order_created": "Order placed",
    "c.ev.status_changed": "Status update",
    "c.ev.address_changed": "Address changed",
    "c.ev.interception_settled": "Interception result",
    "c.ev.delay_notice": "Delay",
    "c.ev.defect_found": "A problem was found",
    "c.ev.defect_resolved": "Remedy chosen",
    "c.ev.refund_recorded": "Refund",
    "c.ev.invoice_issued": "Invoice issued",
    "c.ev.confirmation_proposed": "Waiting for your review",
    "c.ev.confirmation_decided": "Review result",
    "c.ev.other": "Order update",
    "c.defect.exchange": "Exchange",
    "c.defect.refund": "Refund",
    "c.defect.choose": "Please choose what you would like:",
    "c.defect.confirm": "Choose “{choice}”?",
    "c.chat": "Talk to the shop",
    "c.chatUnavailable": "The conversation could not be loaded. Please reload the page.",
    "c.shop": "Shop",
    "c.confirmations": "For your approval",
    "c.confOpen": "{count} waiting for you",
    "c.confAllDone": "All approved",
    "c.required": "Required",
    "c.optional": "Optional",
    "c.version": "Version {n}",
    "c.vstate.proposed": "Waiting for you",
    "c.vstate.approved": "Approved",
    "c.vstate.rejected": "Rejected",
    "c.vstate.superseded": "Replaced by a newer version",
    "c.istate.open": "Not proposed yet",
    "c.istate.proposed": "Waiting for you",
    "c.istate.approved": "Approved",
    "c.istate.rejected": "Rejected",
    "c.approve": "Approve",
    "c.reject": "Reject",
    "c.approveTitle": "Approve “{title}”, version {n}",
    "c.rejectTitle": "Reject “{title}”, version {n}",
    "c.comment": "Comment",
    "c.commentOptional": "Comment (optional)",
    "c.commentRequired": "Please say what should change.",
    "c.commentPlaceholder": "For example: a little darker, please",
    "c.submit": "Submit",
    "c.decidedBy": "{decision} · {time}",
    "c.proposedAt": "Proposed {time}",
    "c.files": "Files",
    "c.filesEmpty": "No files yet.",
    "c.moreFiles": "Load more",
    "c.open": "Open",
    "c.kind.material": "Material",
    "c.kind.colour": "Colour",
    "c.kind.logo_process": "Logo process",
    "c.kind.size_chart": "Size chart",
    "c.kind.print": "Print",
    "c.kind.packaging": "Packaging",
    "c.kind.sample": "Sample",
    "c.kind.other": "Other",
  },
});

const ORDER_KEY = "orderchat.customer.order";
// Progress shows the newest steps; the rest open on request, so the conversation stays near.
const PROGRESS_SHOWN = 4;
const root = document.getElementById("app");

const state = {
  session: null,
  realtime: null,
  orders: [],
  order: null,
  workflow: null,
  conv: null,
  progress: new Map(),
  settledIssues: new Set(),
  confirmations: [],
  files: [],
  filesNext: null,
  timeline: null,
  composer: null,
  ready: false,
  buffered: [],
  generation: 0,
  view: null,
  progressOpen: false,
};

/** What the shop lets this customer do on the open order (`allowed.actions`). */
function allowedActions() {
  const order = state.order;
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

async function main() {
  showLoading();
  const token = takeFragmentToken();
  await begin(token);
}

async function begin(token) {
  let session;
  if (token) {
    try {
      session = await signInWithInvitation(token);
      rememberOrder(session.order || null);
    } catch (err) {
      if (err instanceof ApiError && err.code === "network") {
        showError(err, () => begin(token));
      } else {
        showExpired();
      }
      return;
    }
  } else {
    session = getSession();
    if (!session || !session.user || session.user.kind !== "customer") {
      showExpired();
      return;
    }
    try {
      await setMediaCookie();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        showExpired();
        return;
      }
      console.warn("media cookie not set", err);
    }
  }
  state.session = session;
  if (!state.watching) {
    state.watching = true;
    watchSession();
  }
  startRealtime();
  await loadOrders();
}

function watchSession() {
  onSessionChange((next) => {
    if (!state.session) return;
    if (!next) {
      stopRealtime();
      showExpired();
    } else if (next.user.id !== state.session.user.id) {
      // Another customer's link was opened in another tab: show theirs here too.
      location.reload();
    }
  });
}

function startRealtime() {
  const realtime = new Realtime({
    getToken: () => (state.session ? state.session.token : null),
    getUserId: () => (state.session ? state.session.user.id : null),
    device: deviceLabel(),
  });
  state.realtime = realtime;
  realtime.addEventListener("state", () => renderConnection());
  realtime.addEventListener("frame", (event) => {
    if (state.ready) applyFrame(event.detail);
    else state.buffered.push(event.detail);
  });
  let welcomed = false;
  let stale = false;
  realtime.addEventListener("welcome", () => {
    // A connection that could not resume (no backlog follows) may have missed events.
    if (state.ready && (stale || (welcomed && !realtime.resumed))) reloadAll();
    welcomed = true;
    stale = false;
  });
  realtime.addEventListener("reset", () => {
    stale = true;
  });
  realtime.addEventListener("outbox", () => showPending());
  realtime.addEventListener("signedout", () => {
    clearSession();
    showExpired();
  });
  realtime.start();
}

function stopRealtime() {
  if (state.realtime) state.realtime.stop();
}

async function loadOrders() {
  let orders;
  try {
    const found = await api("/api/orders?limit=100");
    orders = found.orders || [];
  } catch (err) {
    handleLoadError(err, () => loadOrders());
    return;
  }
  state.orders = orders;
  if (!orders.length) {
    showMessage(t("c.noOrder"));
    return;
  }
  let chosen = null;
  try {
    chosen = sessionStorage.getItem(ORDER_KEY);
  } catch {
    chosen = null;
  }
  const order = orders.find((o) => o.id === chosen) || orders[0];
  await openOrder(order.id);
}

function handleLoadError(err, retry) {
  if (err instanceof ApiError && err.status === 401) {
    stopRealtime();
    showExpired();
  } else {
    showError(err, retry);
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

async function openOrder(orderId) {
  state.generation += 1;
  const generation = state.generation;
  state.ready = false;
  rememberOrder(orderId);
  let order;
  let workflows;
  try {
    [order, workflows] = await Promise.all([
      api(`/api/orders/${encodeURIComponent(orderId)}`),
      api("/api/workflows").catch(() => ({ workflows: [] })),
    ]);
  } catch (err) {
    handleLoadError(err, () => openOrder(orderId));
    return;
  }
  if (generation !== state.generation) return;
  state.order = order;
  state.workflow = (workflows.workflows || []).find((w) => w.name === order.workflow) || null;
  state.progress = new Map();
  state.settledIssues = new Set();
  state.confirmations = [];
  state.files = [];
  state.filesNext = null;
  if (state.timeline) state.timeline.destroy();
  if (state.composer) state.composer.destroy();
  state.timeline = null;
  state.composer = null;
  buildView();
  const [conv, messages] = await Promise.all([
    api(`/api/conversations/${encodeURIComponent(order.conv)}`).catch((err) => {
      console.warn("conversation not loaded", err);
      return null;
    }),
    loadHistory(order.conv),
    loadConfirmations(),
    loadFiles(false),
  ]);
  if (generation !== state.generation) return;
  state.conv = conv || { id: order.conv, kind: "order", members: [], member_reads: {}, read_seq: 0 };
  for (const m of messages) noteMessage(m);
  renderProgress();
  await mountChat(messages, generation);
  if (generation !== state.generation) return;
  state.ready = true;
  const buffered = state.buffered;
  state.buffered = [];
  for (const frame of buffered) applyFrame(frame);
}

/** The order's whole history: progress needs every order event, not just the newest page. */
async function loadHistory(convId) {
  const all = [];
  let after = 0;
  for (let page = 0; page < 10; page += 1) {
    let found;
    try {
      found = await api(`/api/conversations/${encodeURIComponent(convId)}/messages?after=${after}&limit=200`);
    } catch (err) {
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

async function reloadAll() {
  if (!state.order) return;
  const generation = state.generation;
  try {
    const order = await api(`/api/orders/${encodeURIComponent(state.order.id)}`);
    if (generation !== state.generation) return;
    state.order = order;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
  }
  const messages = await loadHistory(state.order.conv);
  if (generation !== state.generation) return;
  state.progress = new Map();
  state.settledIssues = new Set();
  for (const m of messages) noteMessage(m);
  if (state.timeline) state.timeline.setMessages(messages);
  renderHeader();
  renderSummary();
  renderProgress();
  await Promise.all([loadConfirmations(), loadFiles(false)]);
}

function noteMessage(m) {
  if (m.kind === "order_event" && m.meta) {
    state.progress.set(m.seq, m);
    if (m.meta.event === "defect_resolved" && m.meta.details && m.meta.details.issue) {
      state.settledIssues.add(m.meta.details.issue);
    }
  }
}

// --- live events --------------------------------------------------------------------

function applyFrame(frame) {
  const order = state.order;
  if (!order) return;
  if (frame.op === "order") {
    if (frame.order && frame.order.id === order.id) {
      state.order = { ...frame.order, allowed: order.allowed };
      renderHeader();
      renderSummary();
    } else if (frame.order) {
      state.orders = state.orders.map((o) => (o.id === frame.order.id ? frame.order : o));
    }
    return;
  }
  if (frame.conv !== order.conv) return;
  switch (frame.op) {
    case "message":
      if (state.timeline) state.timeline.add(frame);
      noteMessage(frame);
      if (frame.kind === "order_event") {
        renderProgress();
        const event = frame.meta && frame.meta.event;
        if (event && event.startsWith("confirmation_")) loadConfirmations();
      }
      if (frame.attachments && frame.attachments.length) refreshFilesSoon();
      break;
    case "recalled":
    case "media":
      if (state.timeline) state.timeline.applyFrame(frame);
      refreshFilesSoon();
      break;
    case "read":
      if (state.timeline) state.timeline.applyFrame(frame);
      break;
    case "member":
      if (frame.conversation) state.conv = { ...state.conv, members: frame.conversation.members };
      if (
        (frame.action === "removed" || frame.action === "left") &&
        (frame.users || []).includes(state.session.user.id)
      ) {
        stopRealtime();
        showExpired();
      } else if (state.timeline) {
        state.timeline.applyFrame(frame);
      }
      break;
    default:
      if (state.timeline) state.timeline.applyFrame(frame);
  }
}

let filesTimer = null;
function refreshFilesSoon() {
  clearTimeout(filesTimer);
  filesTimer = setTimeout(() => loadFiles(false), 600);
}

// --- page views ---------------------------------------------------------------------

function page(...children) {
  clear(root);
  state.view = null;
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
function showCentered(content) {
  const draw = () => page(simpleHeader(), h("main", { class: "c-center" }, content()));
  draw();
  state.redraw = draw;
}

function showLoading() {
  document.title = "OrderChat";
  showCentered(() => h("p", { class: "c-loading", role: "status" }, t("c.loading")));
}

function showExpired() {
  state.generation += 1;
  state.ready = false;
  document.title = "OrderChat";
  showCentered(() =>
    h(
      "section",
      { class: "c-notice", testid: "link-expired", role: "alert" },
      h("div", { class: "c-notice-icon", "aria-hidden": "true" }, "⌛"),
      h("h1", null, t("c.expired.title")),
      h("p", null, t("c.expired.text")),
    ),
  );
}

function showError(err, retry) {
  showCentered(() =>
    h(
      "section",
      { class: "c-notice", role: "alert" },
      h("h1", null, t("c.error.title")),
      h("p", null, errorText(err)),
      h(
        "button",
        {
          class: "btn btn-primary",
          type: "button",
          on: {
            click: () => {
              showLoading();
              retry();
            },
          },
        },
        t("common.retry"),
      ),
    ),
  );
}

function showMessage(text) {
  showCentered(() => h("section", { class: "c-notice" }, h("p", null, text)));
}

function buildView() {
  const v = {
    number: h("h1", { class: "c-number", testid: "order-number" }),
    status: h("span", { class: "c-status", testid: "order-status" }),
    connection: h("span", { class: "c-connection", testid: "connection", role: "status" }),
    me: h("span", { class: "c-me", testid: "me" }),
    switcher: h("span", { class: "c-switcher" }),
    summary: h("div", { class: "c-summary-body" }),
    summaryTitle: h("h2", null),
    progressTitle: h("h2", null),
    progress: h("ol", { class: "c-progress", testid: "order-timeline" }),
    confSection: h("section", { class: "c-section c-confirmations", hidden: true }),
    chatTitle: h("h2", null),
    chat: h("div", { class: "c-chat-body" }),
    filesTitle: h("h2", null),
    files: h("ul", { class: "c-files" }),
    filesMore: h("div", { class: "c-files-more" }),
  };
  state.view = v;
  const header = h(
    "header",
    { class: "c-header" },
    h("div", { class: "c-header-main" }, v.number, v.status),
    h("div", { class: "c-header-tools" }, v.connection, v.switcher, langSwitcher()),
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
    ),
    h("section", { class: "c-section c-chat" }, v.chatTitle, v.chat),
  );
  clear(root);
  root.append(header, main);
  state.redraw = () => {
    renderHeader();
    renderSummary();
    renderProgress();
    renderConfirmations();
    renderFiles();
    renderConnection();
  };
  state.redraw();
}

function renderConnection() {
  const v = state.view;
  if (!v || !state.realtime) return;
  const s = state.realtime.state;
  v.connection.dataset.state = s;
  v.connection.title = t(`conn.${s}`);
  clear(v.connection).append(
    h("span", { class: "c-dot", "aria-hidden": "true" }),
    h("span", { class: "c-connection-text" }, t(`conn.${s}`)),
  );
}

function statusLabel(status) {
  const order = state.order;
  if (order && status === order.status && order.status_label) return pickLang(order.status_label);
  const wf = state.workflow;
  const found = wf && (wf.states || []).find((s) => s.name === status);
  return found ? pickLang(found.label) : status;
}

function renderHeader() {
  const v = state.view;
  const order = state.order;
  if (!v || !order) return;
  document.title = `${t("c.title", { number: order.number })} · OrderChat`;
  v.number.textContent = order.number;
  v.status.textContent = statusLabel(order.status);
  v.status.dataset.status = order.status;
  v.me.textContent = t("c.hello", { name: state.session.user.display_name });
  clear(v.switcher);
  if (state.orders.length > 1) {
    const select = h(
      "select",
      {
        class: "c-order-switch",
        testid: "order-switch",
        "aria-label": t("c.switchOrder"),
        on: {
          change: (e) => {
            showLoading();
            openOrder(e.target.value);
          },
        },
      },
      state.orders.map((o) => h("option", { value: o.id, selected: o.id === order.id }, o.number)),
    );
    select.value = order.id;
    v.switcher.append(select);
  }
}

function row(label, ...value) {
  return h("div", { class: "c-row" }, h("dt", null, label), h("dd", null, ...value));
}

function formatAddress(address) {
  if (!address || typeof address !== "object") return "";
  const parts = ["name", "phone", "country", "region", "city", "district", "line1", "line2", "postcode"];
  return parts
    .map((k) => address[k])
    .filter((x) => x !== null && x !== undefined && x !== "")
    .join(" ");
}

function renderSummary() {
  const v = state.view;
  const order = state.order;
  if (!v || !order) return;
  v.summaryTitle.textContent = t("c.summary");
  const items = h(
    "ul",
    { class: "c-items" },
    (order.items || []).map((item) =>
      h(
        "li",
        { class: "c-item", testid: "order-item" },
        h("span", { class: "c-item-name" }, item.name || item.sku),
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
  const address = formatAddress(order.address);
  if (address) rows.push(row(t("c.address"), address));
  const invoiceParts = [
    h(
      "span",
      { testid: "order-invoice", dataset: { status: order.invoice_status } },
      tOr(`c.inv.${order.invoice_status}`, order.invoice_status),
    ),
  ];
  if (allowedActions().includes("request_invoice") && order.invoice_status === "none") {
    invoiceParts.push(
      " ",
      h(
        "button",
        { class: "btn btn-small", type: "button", testid: "request-invoice", on: { click: requestInvoice } },
        t("c.requestInvoice"),
      ),
    );
  }
  rows.push(row(t("c.invoice"), ...invoiceParts));
  clear(v.summary).append(items, h("dl", { class: "c-facts" }, rows));
}

function eventTitle(m) {
  const event = m.meta.event;
  if (event === "status_changed" && m.meta.details && m.meta.details.to) return statusLabel(m.meta.details.to);
  return tOr(`c.ev.${event}`, t("c.ev.other"));
}

function renderProgress() {
  const v = state.view;
  if (!v) return;
  v.progressTitle.textContent = t("c.progress");
  const events = Array.from(state.progress.values())
    .filter((m) => !m.recalled)
    .sort((a, b) => b.seq - a.seq);
  clear(v.progress);
  if (!events.length) {
    v.progress.append(h("li", { class: "c-empty" }, t("c.progressEmpty")));
    return;
  }
  const allowed = allowedActions();
  const collapsed = !state.progressOpen && events.length > PROGRESS_SHOWN;
  events.forEach((m, index) => {
    const details = m.meta.details || {};
    const body = [
      h("div", { class: "c-step-title" }, eventTitle(m)),
      h("div", { class: "c-step-text" }, pickLang(m.meta.text) || m.text),
      h("time", { class: "c-step-time", datetime: new Date(m.ts).toISOString() }, fmtDateTime(m.ts)),
    ];
    if (
      m.meta.event === "defect_found" &&
      details.issue &&
      !state.settledIssues.has(details.issue) &&
      allowed.includes("choose_defect_remedy")
    ) {
      body.push(
        h(
          "div",
          { class: "c-step-actions" },
          h("span", null, t("c.defect.choose")),
          ["exchange", "refund"].map((outcome) =>
            h(
              "button",
              {
                class: "btn btn-small",
                type: "button",
                testid: `defect-${outcome}`,
                on: { click: () => chooseRemedy(details.issue, outcome) },
              },
              t(`c.defect.${outcome}`),
            ),
          ),
        ),
      );
    }
    v.progress.append(
      h(
        "li",
        {
          class: ["c-step", index === 0 ? "c-step-current" : null],
          testid: "order-timeline-item",
          hidden: collapsed && index >= PROGRESS_SHOWN,
          dataset: { event: m.meta.event, status: m.meta.event === "status_changed" ? details.to : null, seq: m.seq },
        },
        h("span", { class: "c-step-dot", "aria-hidden": "true" }),
        h("div", { class: "c-step-body" }, body),
      ),
    );
  });
  if (events.length > PROGRESS_SHOWN) {
    const toggle = () => {
      state.progressOpen = !state.progressOpen;
      renderProgress();
    };
    v.progress.append(
      h(
        "li",
        { class: "c-step-toggle" },
        h(
          "button",
          {
            class: "btn btn-small",
            type: "button",
            testid: "order-timeline-more",
            "aria-expanded": String(Boolean(state.progressOpen)),
            on: { click: toggle },
          },
          state.progressOpen ? t("c.showLess") : t("c.showAll", { count: events.length }),
        ),
      ),
    );
  }
}

// --- conversation -------------------------------------------------------------------

async function mountChat(messages, generation) {
  const v = state.view;
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
  if (generation !== state.generation) return;
  const me = state.session.user;
  const members = new ShopMembers([[me.id, me], ...contacts.map((u) => [u.id, u])]);
  const timeline = new Timeline({
    me,
    members,
    conv: state.conv,
    realtime: state.realtime,
    onReply: (message) => state.composer && state.composer.setReply(message),
    canRecall: (message) => message.sender === me.id && message.kind === "text",
  });
  const composer = new Composer({
    conv: state.conv,
    realtime: state.realtime,
    members: new Map([[me.id, me]]),
    roles: [],
    me,
  });
  composer.attachDropTarget(timeline.el);
  state.timeline = timeline;
  state.composer = composer;
  // Attached first, so the list can scroll to the newest message.
  clear(v.chat).append(timeline.el, composer.el);
  timeline.setMessages(messages);
  showPending();
}

function showPending() {
  if (!state.timeline || !state.realtime || !state.order) return;
  state.timeline.showPending(state.realtime.pending().filter((f) => f.conv === state.order.conv));
}

// --- confirmations ------------------------------------------------------------------

async function loadConfirmations() {
  if (!state.order) return;
  const generation = state.generation;
  try {
    const found = await api(`/api/orders/${encodeURIComponent(state.order.id)}/confirmations`);
    if (generation !== state.generation) return;
    state.confirmations = found.items || [];
  } catch (err) {
    console.warn("confirmations not loaded", err);
    return;
  }
  renderConfirmations();
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

function renderConfirmations() {
  const v = state.view;
  if (!v) return;
  const items = state.confirmations;
  const section = v.confSection;
  clear(section);
  section.removeAttribute("data-testid");
  if (!items.length) {
    section.hidden = true;
    return;
  }
  section.hidden = false;
  section.setAttribute("data-testid", "confirmations");
  const canDecide = !state.order.allowed || allowedActions().includes("decide_version");
  const pending = (item) => item.versions.some((ver) => ver.state === "pending");
  const open = items.filter(pending).length;
  // Decisions the customer owes move to the top of the order column.
  section.classList.toggle("c-has-open", open > 0);
  section.append(
    h(
      "h2",
      null,
      t("c.confirmations"),
      " ",
      h(
        "span",
        { class: ["c-badge", open ? "c-badge-open" : "c-badge-done"] },
        open ? t("c.confOpen", { count: open }) : t("c.confAllDone"),
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
          versions.map((ver) => renderVersion(item, ver, canDecide)),
        ),
      ),
    );
  }
  section.append(list);
}

function renderVersion(item, ver, canDecide) {
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
    parts.push(
      h(
        "div",
        { class: "c-version-actions" },
        h(
          "button",
          {
            class: "btn btn-primary",
            type: "button",
            testid: "approve-version",
            on: { click: () => decide(item, ver, "approved") },
          },
          t("c.approve"),
        ),
        h(
          "button",
          {
            class: "btn btn-danger",
            type: "button",
            testid: "reject-version",
            on: { click: () => decide(item, ver, "rejected") },
          },
          t("c.reject"),
        ),
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
 * A small modal form on the native <dialog>: one submit path, errors shown in place.
 * `submit(values)` does the work; the dialog closes only when it succeeds.
 */
function formDialog({ title, fields, submitLabel, submit, danger = false }) {
  const error = h("p", { class: "c-dialog-error", role: "alert", hidden: true });
  const inputs = fields.map((f) => {
    const id = `c-field-${f.name}`;
    const input =
      f.type === "textarea"
        ? h("textarea", {
            id,
            name: f.name,
            rows: 3,
            maxlength: f.maxlength || 2000,
            placeholder: f.placeholder || null,
            required: f.required || false,
          })
        : h("input", {
            id,
            name: f.name,
            type: "text",
            maxlength: f.maxlength || 200,
            placeholder: f.placeholder || null,
            required: f.required || false,
            autocomplete: "off",
          });
    return { f, input, el: h("label", { class: "c-field", for: id }, h("span", null, f.label), input) };
  });
  const submitBtn = h(
    "button",
    { class: ["btn", danger ? "btn-danger" : "btn-primary"], type: "submit", testid: "dialog-submit" },
    submitLabel,
  );
  const cancelBtn = h("button", { class: "btn", type: "button", testid: "dialog-cancel" }, t("common.cancel"));
  const form = h(
    "form",
    { class: "c-dialog-form", novalidate: true },
    h("h2", null, title),
    inputs.map((i) => i.el),
    error,
    h("div", { class: "c-dialog-buttons" }, cancelBtn, submitBtn),
  );
  const dialog = h("dialog", { class: "c-dialog", testid: "dialog" }, form);
  const close = () => {
    if (dialog.open) dialog.close();
    dialog.remove();
  };
  cancelBtn.addEventListener("click", close);
  dialog.addEventListener("close", () => dialog.remove());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = {};
    for (const { f, input } of inputs) {
      values[f.name] = input.value.trim();
      if (f.required && !values[f.name]) {
        error.textContent = f.requiredText || f.label;
        error.hidden = false;
        input.focus();
        return;
      }
    }
    submitBtn.disabled = true;
    error.hidden = true;
    try {
      await submit(values);
      close();
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
    } finally {
      submitBtn.disabled = false;
    }
  });
  document.body.append(dialog);
  dialog.showModal();
  if (inputs[0]) inputs[0].input.focus();
  return dialog;
}

function decide(item, ver, decision) {
  const approve = decision === "approved";
  formDialog({
    title: t(approve ? "c.approveTitle" : "c.rejectTitle", { title: item.title, n: ver.number }),
    submitLabel: approve ? t("c.approve") : t("c.reject"),
    danger: !approve,
    fields: [
      {
        name: "comment",
        type: "textarea",
        label: approve ? t("c.commentOptional") : t("c.comment"),
        placeholder: approve ? null : t("c.commentPlaceholder"),
        required: !approve,
        requiredText: t("c.commentRequired"),
      },
    ],
    submit: async ({ comment }) => {
      const result = await api(`/api/confirmations/${encodeURIComponent(item.id)}/versions/${ver.number}/decision`, {
        method: "POST",
        body: { decision, comment },
      });
      if (result && result.item) {
        state.confirmations = state.confirmations.map((i) => (i.id === result.item.id ? result.item : i));
        renderConfirmations();
      } else {
        await loadConfirmations();
      }
    },
  });
}

function requestInvoice() {
  formDialog({
    title: t("c.requestInvoice"),
    submitLabel: t("c.submit"),
    fields: [
      { name: "title", label: t("c.invoiceTitle"), required: true, requiredText: t("c.invoiceTitle") },
      { name: "tax_id", label: t("c.invoiceTaxId") },
    ],
    submit: async ({ title, tax_id: taxId }) => {
      const body = { title };
      if (taxId) body.tax_id = taxId;
      await api(`/api/orders/${encodeURIComponent(state.order.id)}/invoice`, { method: "POST", body });
      const order = await api(`/api/orders/${encodeURIComponent(state.order.id)}`);
      state.order = order;
      renderSummary();
    },
  });
}

async function chooseRemedy(issueId, outcome) {
  const choice = t(`c.defect.${outcome}`);
  formDialog({
    title: t("c.defect.confirm", { choice }),
    submitLabel: choice,
    fields: [],
    submit: async () => {
      await api(`/api/orders/${encodeURIComponent(state.order.id)}/issues/${encodeURIComponent(issueId)}/settle`, {
        method: "POST",
        body: { outcome },
      });
      state.settledIssues.add(issueId);
      renderProgress();
    },
  });
}

// --- files --------------------------------------------------------------------------

async function loadFiles(more) {
  if (!state.order) return;
  const generation = state.generation;
  const before = more && state.filesNext ? `&before=${state.filesNext}` : "";
  try {
    const found = await api(`/api/orders/${encodeURIComponent(state.order.id)}/files?limit=60${before}`);
    if (generation !== state.generation) return;
    state.files = more ? state.files.concat(found.files || []) : found.files || [];
    state.filesNext = found.next || null;
  } catch (err) {
    console.warn("files not loaded", err);
    return;
  }
  renderFiles();
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

function renderFiles() {
  const v = state.view;
  if (!v) return;
  v.filesTitle.textContent = t("c.files");
  clear(v.files);
  clear(v.filesMore);
  if (!state.files.length) {
    v.files.append(h("li", { class: "c-empty" }, t("c.filesEmpty")));
    return;
  }
  for (const file of state.files) {
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
  if (state.filesNext) {
    v.filesMore.append(
      h("button", { class: "btn btn-small", type: "button", on: { click: () => loadFiles(true) } }, t("c.moreFiles")),
    );
  }
}

// --- language -----------------------------------------------------------------------

window.addEventListener("langchange", () => {
  if (state.redraw) state.redraw();
  if (state.view) state.view.chatTitle.textContent = t("c.chat");
  document.documentElement.lang = getLang();
});

// A new invitation link opened in this tab only changes the fragment: start over with it.
window.addEventListener("hashchange", () => {
  if (location.hash.length > 1) location.reload();
});

main().catch((err) => {
  console.warn("the page failed to start", err);
  showError(err, () => main());
});
