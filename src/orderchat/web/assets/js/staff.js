/**
 * The staff workspace: sign-in, the conversation list, the open conversation with its
 * composer, and the order panel for order conversations. One WebSocket feeds all of
 * them; HTTP loads the starting state (docs/protocol.md §16).
 */

import { h, clear } from "./dom.js";
import { langSwitcher, pickText, t } from "./i18n.js";
import { ApiError, api, errorText, login, logout, logoutEverywhere, setMediaCookie } from "./api.js";
import { clearSession, deviceLabel, getSession, onSessionChange } from "./session.js";
import { Realtime } from "./socket.js";
import { icon } from "./ui/icons.js";
import { ConvList } from "./ui/convlist.js";
import { Timeline } from "./ui/timeline.js";
import { Composer } from "./ui/composer.js";
import { OrderPanel } from "./ui/orderpanel.js";
import { confirmDialog, formDialog } from "./ui/dialogs.js";
import { avatar, isAdmin, onLang, roleLabel, toast } from "./ui/util.js";
import { ROLES } from "./ui/strings.js";
import { AdminConsole, joinToken, showJoinPage } from "./ui/admin.js";

const root = document.getElementById("app");
const phone = window.matchMedia("(max-width: 899px)");

/** Everything that belongs to one signed-in session; rebuilt from scratch on sign-in. */
let ws = null;

function setTitle() {
  let unread = 0;
  if (ws && ws.list) for (const c of ws.list.convs.values()) unread += c.unread || 0;
  document.title = unread > 0 ? `(${unread > 99 ? "99+" : unread}) ${t("app.title")}` : t("app.title");
}

// ---- sign-in ---------------------------------------------------------------------

let signingOut = false;

function showLogin(notice) {
  teardown();
  clear(root);
  document.body.classList.remove("in-app");
  const noticeEl = h(
    "p",
    { class: "login-notice", testid: "login-notice", role: "status", hidden: !notice },
    notice || "",
  );
  const username = h("input", {
    id: "login-username",
    name: "username",
    testid: "login-username",
    autocomplete: "username",
    autocapitalize: "none",
    spellcheck: "false",
    required: true,
  });
  const password = h("input", {
    id: "login-password",
    name: "password",
    type: "password",
    testid: "login-password",
    autocomplete: "current-password",
    required: true,
  });
  const error = h("p", { class: "login-error", testid: "login-error", role: "alert", hidden: true });
  const submit = h(
    "button",
    { type: "submit", class: "btn btn-primary btn-block", testid: "login-submit" },
    t("login.submit"),
  );
  const form = h(
    "form",
    { class: "login-form", testid: "login-form", method: "post", action: "/", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "login-username" }, t("login.username")), username),
    h("div", { class: "field" }, h("label", { for: "login-password" }, t("login.password")), password),
    error,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const u = username.value.trim();
    const p = password.value;
    if (!u || !p) {
      error.textContent = t("dlg.requiredField", { field: !u ? t("login.username") : t("login.password") });
      error.hidden = false;
      (!u ? username : password).focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = t("login.busy");
    error.hidden = true;
    noticeEl.hidden = true;
    try {
      await login(u, p);
      // The session listener opens the workspace.
      if (!ws) boot(getSession());
    } catch (err) {
      submit.disabled = false;
      submit.textContent = t("login.submit");
      if (err instanceof ApiError && err.status === 401) error.textContent = t("login.failed");
      else if (err instanceof ApiError && err.status === 429)
        error.textContent = t("login.rate_limited", { seconds: err.retryAfter || 12 });
      else error.textContent = errorText(err);
      error.hidden = false;
      password.select();
    }
  });
  const card = h(
    "main",
    { class: "login-screen" },
    h(
      "div",
      { class: "login-card" },
      h(
        "div",
        { class: "brand brand-lg" },
        h("span", { class: "brand-mark", "aria-hidden": "true" }, icon("chat")),
        h("span", t("app.brand")),
      ),
      h("h1", { class: "login-title" }, t("login.title")),
      h("p", { class: "login-sub" }, t("login.subtitle")),
      noticeEl,
      form,
      h("div", { class: "login-foot" }, langSwitcher()),
    ),
  );
  root.append(card);
  document.title = t("app.title");
  username.focus();
  const off = onLang(() => {
    if (ws || !card.isConnected) {
      off();
      return;
    }
    showLogin(noticeEl.hidden ? null : noticeEl.textContent);
  });
}

// ---- the workspace ----------------------------------------------------------------

function teardown() {
  if (!ws) return;
  const s = ws;
  ws = null;
  closeConversation(s, true);
  if (s.realtime) s.realtime.stop();
  for (const off of s.offs) off();
}

async function boot(session) {
  teardown();
  if (!session) {
    showLogin();
    return;
  }
  const me = session.user;
  const realtime = new Realtime({ device: deviceLabel() });
  const s = {
    session,
    me,
    realtime,
    members: new Map([[me.id, me]]),
    roles: ROLES.slice(),
    orders: new Map(),
    customers: new Map(),
    ready: false,
    queue: [],
    open: null,
    offs: [],
  };
  ws = s;
  document.body.classList.add("in-app");
  buildShell(s);
  setMediaCookie().catch((err) => console.warn("media cookie not set", err));

  const on = (type, fn) => {
    realtime.addEventListener(type, fn);
    s.offs.push(() => realtime.removeEventListener(type, fn));
  };
  on("state", (e) => setConnection(s, e.detail));
  on("frame", (e) => {
    if (ws !== s) return;
    if (!s.ready) s.queue.push(e.detail);
    else onFrame(s, e.detail);
  });
  on("outbox", (e) => {
    if (s.open && s.open.timeline) s.open.timeline.showPending(e.detail || []);
  });
  on("welcome", () => {
    if (ws === s && s.ready && s.loadFailed) reload(s);
  });
  on("reset", () => {
    if (ws === s) reload(s);
  });
  on("signedout", () => {
    if (ws !== s) return;
    clearSession();
    showLogin(t("login.expired"));
  });
  realtime.start();
  setConnection(s, realtime.state);
  s.offs.push(onLang(() => relabel(s)));

  if (await loadAndCatchUp(s)) route(s);
}

/**
 * Load the starting state, then apply the frames that arrived meanwhile.
 * @returns {Promise<boolean>} false when the session ended while loading
 */
async function loadAndCatchUp(s) {
  await loadAll(s);
  if (ws !== s) return false;
  s.ready = true;
  const queued = s.queue;
  s.queue = [];
  for (const f of queued) onFrame(s, f);
  return true;
}

async function loadAll(s) {
  const [users, convs, orders] = await Promise.allSettled([
    api("/api/users"),
    api("/api/conversations"),
    api("/api/orders?limit=500"),
  ]);
  if (ws !== s) return;
  if (users.status === "fulfilled" && users.value) {
    const present = new Set();
    for (const u of users.value.users || []) {
      s.members.set(u.id, u);
      for (const r of u.roles || []) present.add(r);
    }
    s.roles = ROLES.filter((r) => present.has(r));
  }
  if (orders.status === "fulfilled" && orders.value) {
    for (const o of orders.value.orders || []) {
      s.orders.set(o.conv, o);
      if (o.customer && !s.members.has(o.customer))
        s.members.set(o.customer, {
          id: o.customer,
          display_name: t("user.customer"),
          kind: "customer",
          roles: [],
          placeholder: true,
        });
    }
    for (const o of s.orders.values()) s.list.orders.set(o.conv, o);
  }
  s.loadFailed = convs.status !== "fulfilled";
  if (!s.loadFailed && convs.value) s.list.setConversations(convs.value.conversations || []);
  else s.list.setError(convs.reason ? errorText(convs.reason) : "");
  setTitle();
}

async function reload(s) {
  s.ready = false;
  if ((await loadAndCatchUp(s)) && s.open) openConversation(s, s.open.id, { keepRoute: true });
}

function buildShell(s) {
  clear(root);
  s.connection = h(
    "span",
    { class: "conn", testid: "connection", dataset: { state: "connecting" }, role: "status" },
    h("span", { class: "conn-dot", "aria-hidden": "true" }),
    h("span", { class: "conn-label" }, t("conn.connecting")),
  );
  s.meName = h("span", { class: "me-name", testid: "me" }, s.me.display_name || s.me.username);
  s.meRoles = h("span", { class: "me-roles" }, (s.me.roles || []).map(roleLabel).join(" · "));
  s.signout = h(
    "button",
    {
      type: "button",
      class: "icon-btn",
      testid: "signout",
      title: t("shell.signout"),
      "aria-label": t("shell.signout"),
    },
    icon("logout"),
  );
  s.signoutAll = h(
    "button",
    { type: "button", class: "btn btn-small btn-quiet", testid: "signout-all", title: t("shell.signoutAll") },
    t("shell.signoutAll"),
  );
  s.adminLink = isAdmin(s.me)
    ? h(
        "a",
        {
          href: "#/admin",
          class: "btn btn-small btn-quiet admin-open",
          testid: "admin-open",
          title: t("admin.menu"),
          "aria-label": t("admin.menu"),
        },
        icon("users"),
        h("span", { class: "admin-open-label" }, t("admin.menu")),
      )
    : null;
  s.signout.addEventListener("click", () => signOut(s, false));
  s.signoutAll.addEventListener("click", () => signOut(s, true));
  const header = h(
    "header",
    { class: "topbar" },
    h(
      "div",
      { class: "brand" },
      h("span", { class: "brand-mark", "aria-hidden": "true" }, icon("chat")),
      h("span", { class: "brand-name" }, t("app.brand")),
    ),
    s.connection,
    h("div", { class: "topbar-spacer" }),
    langSwitcher(),
    h("div", { class: "me" }, avatar(s.me, s.me.id, "sm"), h("span", { class: "me-text" }, s.meName, s.meRoles)),
    s.adminLink,
    s.signoutAll,
    s.signout,
  );
  s.list = new ConvList({
    me: s.me,
    members: s.members,
    onSelect: (id) => selectConversation(s, id),
    onNewDirect: () => newDirect(s),
  });
  s.main = h("main", { class: "conv-pane" });
  s.side = h("div", { class: "side-pane" });
  s.workspace = h("div", { class: "workspace" }, s.list.el, s.main, s.side);
  s.shell = h("div", { class: "shell" }, header, s.workspace);
  root.append(s.shell);
  showEmpty(s);
  const onHash = () => ws === s && s.ready && route(s);
  window.addEventListener("hashchange", onHash);
  s.offs.push(() => window.removeEventListener("hashchange", onHash));
  const onPhone = () => s.workspace.classList.remove("panel-open");
  phone.addEventListener("change", onPhone);
  s.offs.push(() => phone.removeEventListener("change", onPhone));
}

function relabel(s) {
  s.signout.title = t("shell.signout");
  s.signout.setAttribute("aria-label", t("shell.signout"));
  s.signoutAll.title = t("shell.signoutAll");
  s.signoutAll.textContent = t("shell.signoutAll");
  s.meRoles.textContent = (s.me.roles || []).map(roleLabel).join(" · ");
  if (s.adminLink) {
    s.adminLink.title = t("admin.menu");
    s.adminLink.setAttribute("aria-label", t("admin.menu"));
    s.adminLink.querySelector(".admin-open-label").textContent = t("admin.menu");
  }
  if (s.admin) openAdmin(s, true);
  s.shell.querySelector(".brand-name").textContent = t("app.brand");
  setConnection(s, s.realtime.state);
  if (s.open) renderHeader(s);
  else showEmpty(s);
  setTitle();
}

function setConnection(s, state) {
  if (!s.connection) return;
  s.connection.dataset.state = state;
  s.connection.querySelector(".conn-label").textContent = t(`conn.${state}`);
  s.connection.title = t(`conn.${state}`);
}

async function signOut(s, everywhere) {
  if (everywhere) {
    const ok = await confirmDialog(t("shell.signoutAll"), t("shell.signoutAllConfirm"));
    if (!ok) return;
  }
  signingOut = true;
  s.realtime.stop();
  s.realtime.forgetLocalState();
  try {
    if (everywhere) await logoutEverywhere();
    else await logout();
  } catch (err) {
    console.warn("sign-out did not reach the server", err);
  } finally {
    signingOut = false;
  }
  current = null;
  showLogin(t("login.signedOut"));
}

async function newDirect(s) {
  const people = Array.from(s.members.values())
    .filter((u) => u.id !== s.me.id && u.kind !== "customer")
    .sort((a, b) => (a.display_name || a.username).localeCompare(b.display_name || b.username, "zh-CN"));
  await formDialog({
    title: t("list.newDirectTitle"),
    fields: [
      {
        name: "user",
        label: t("list.colleague"),
        type: "select",
        required: true,
        options: people.map((u) => ({
          value: u.id,
          label: `${u.display_name || u.username} · ${(u.roles || []).map(roleLabel).join(" ")}`,
        })),
      },
    ],
    onSubmit: async (v) => {
      const conv = await api("/api/conversations", { method: "POST", body: { kind: "direct", members: [v.user] } });
      s.list.upsert({
        read_seq: 0,
        unread: 0,
        last_message: null,
        last_activity_ts: conv.created_ts,
        ...s.list.get(conv.id),
        ...conv,
      });
      selectConversation(s, conv.id);
    },
  });
}

// ---- routing -------------------------------------------------------------------------

function routeConv() {
  const m = location.hash.match(/^#\/c\/([A-Za-z0-9_-]+)$/);
  return m ? m[1] : null;
}

function openAdmin(s, rebuild) {
  if (s.admin && !rebuild) return;
  closeAdmin(s);
  closeConversation(s, true);
  s.admin = new AdminConsole({ me: s.me });
  s.workspace.hidden = true;
  s.shell.append(s.admin.el);
  s.admin.load();
}

function closeAdmin(s) {
  if (!s.admin) return;
  s.admin.destroy();
  s.admin = null;
  s.workspace.hidden = false;
  showEmpty(s);
}

function route(s) {
  const token = joinToken();
  if (token) {
    teardown();
    showJoinPage(root, token);
    return;
  }
  if (location.hash === "#/admin" && isAdmin(s.me)) {
    openAdmin(s);
    return;
  }
  closeAdmin(s);
  const id = routeConv();
  if (id && (!s.open || s.open.id !== id)) openConversation(s, id, {});
  else if (!id && s.open) {
    closeConversation(s);
    showEmpty(s);
  }
}

function selectConversation(s, id) {
  if (routeConv() === id) {
    if (!s.open || s.open.id !== id) openConversation(s, id, {});
    return;
  }
  if (routeConv() && phone.matches) history.replaceState(null, "", `#/c/${id}`);
  else location.hash = `#/c/${id}`;
  route(s);
}

function goBack(s) {
  if (routeConv()) history.replaceState(null, "", location.pathname + location.search);
  closeConversation(s);
  showEmpty(s);
}

// ---- the open conversation ----------------------------------------------------------

function showEmpty(s) {
  clear(s.main);
  clear(s.side);
  s.workspace.classList.remove("show-conv", "has-panel", "panel-open");
  s.list.setActive(null);
  s.main.append(
    h(
      "div",
      { class: "conv-empty" },
      h("span", { class: "conv-empty-icon", "aria-hidden": "true" }, icon("chat")),
      h("p", { class: "conv-empty-title" }, t("conv.empty")),
      h("p", { class: "conv-empty-hint" }, t("conv.emptyHint")),
    ),
  );
}

function closeConversation(s, quiet) {
  const o = s && s.open;
  if (!o) return;
  s.open = null;
  if (o.timeline) o.timeline.destroy();
  if (o.composer) o.composer.destroy();
  if (o.panel) o.panel.destroy();
  if (!quiet && s.list) s.list.setActive(null);
}

function renderHeader(s) {
  const o = s.open;
  if (!o || !o.header) return;
  const conv = o.conv;
  const order = s.orders.get(conv.id);
  clear(o.header);
  const back = h(
    "button",
    {
      type: "button",
      class: "icon-btn conv-back",
      testid: "conv-back",
      "aria-label": t("conv.back"),
      title: t("conv.back"),
      on: { click: () => goBack(s) },
    },
    icon("back"),
  );
  const sub = [];
  if (conv.kind !== "direct") sub.push(t("conv.members", { count: (conv.members || []).length }));
  else {
    const other = (conv.members || []).find((id) => id !== s.me.id);
    const u = s.members.get(other);
    if (u && u.roles) sub.push(u.roles.map(roleLabel).join(" · "));
  }
  const parts = [
    back,
    h(
      "div",
      { class: "conv-head-text" },
      h("h2", { class: "conv-header", testid: "conv-header" }, s.list.titleOf(conv)),
      h(
        "p",
        { class: "conv-sub" },
        order
          ? h(
              "span",
              { class: "status-chip", dataset: { status: order.status } },
              pickText(order.status_label, order.status),
            )
          : null,
        sub.join(" · "),
      ),
    ),
    conv.kind === "order"
      ? h(
          "button",
          {
            type: "button",
            class: "btn btn-small conv-panel-toggle",
            testid: "order-panel-toggle",
            "aria-expanded": s.workspace.classList.contains("panel-open") ? "true" : "false",
            on: { click: () => togglePanel(s) },
          },
          icon("order"),
          h("span", t("conv.orderPanel")),
        )
      : null,
  ];
  o.header.append(...parts.filter(Boolean));
}

function togglePanel(s, force) {
  const open = force === undefined ? !s.workspace.classList.contains("panel-open") : force;
  s.workspace.classList.toggle("panel-open", open);
  const btn = s.open && s.open.header ? s.open.header.querySelector("[data-testid='order-panel-toggle']") : null;
  if (btn) btn.setAttribute("aria-expanded", open ? "true" : "false");
  if (open && s.open && s.open.panel) s.open.panel.el.focus({ preventScroll: true });
}

async function ensureCustomer(s, order) {
  if (!order || !order.customer) return;
  const known = s.members.get(order.customer);
  if (known && !known.placeholder) return;
  if (s.customers.has(order.customer)) return;
  s.customers.set(order.customer, true);
  try {
    const c = await api(`/api/customers/${encodeURIComponent(order.customer)}`);
    if (c)
      s.members.set(order.customer, {
        id: order.customer,
        display_name: c.name || c.display_name || t("user.customer"),
        kind: "customer",
        roles: [],
      });
  } catch (err) {
    console.warn("customer record not loaded", err);
  }
}

async function openConversation(s, id, { keepRoute }) {
  closeConversation(s, true);
  const token = {};
  const summary = s.list.get(id) || { id, kind: "channel", members: [] };
  const header = h("div", { class: "conv-head" });
  const body = h("div", { class: "conv-main" }, h("p", { class: "op-loading" }, t("common.loading")));
  const view = h(
    "section",
    { class: "conv-view", testid: "conv-view", dataset: { convId: id, kind: summary.kind } },
    header,
    body,
  );
  s.open = { id, token, conv: summary, header, view, timeline: null, composer: null, panel: null, early: [] };
  clear(s.main).append(view);
  clear(s.side);
  s.workspace.classList.add("show-conv");
  s.workspace.classList.remove("panel-open");
  s.workspace.classList.toggle("has-panel", summary.kind === "order");
  s.list.setActive(id);
  renderHeader(s);
  if (!keepRoute && phone.matches) window.scrollTo(0, 0);

  let conv;
  let messages;
  try {
    const order = s.orders.get(id);
    [conv, messages] = await Promise.all([
      api(`/api/conversations/${encodeURIComponent(id)}`),
      api(`/api/conversations/${encodeURIComponent(id)}/messages?limit=50`),
      ensureCustomer(s, order),
    ]);
  } catch (err) {
    if (!s.open || s.open.token !== token) return;
    clear(body).append(
      h(
        "p",
        { class: "op-error", role: "alert" },
        err instanceof ApiError && err.status === 403
          ? t("conv.removed")
          : t("conv.loadFailed", { message: errorText(err) }),
      ),
    );
    return;
  }
  if (!s.open || s.open.token !== token || ws !== s) return;
  s.open.conv = conv;
  s.list.upsert({ ...conv, member_reads: undefined });
  view.dataset.kind = conv.kind;
  s.workspace.classList.toggle("has-panel", conv.kind === "order");
  renderHeader(s);

  let composer = null;
  const timeline = new Timeline({
    me: s.me,
    members: s.members,
    conv,
    realtime: s.realtime,
    onReply: (m) => composer && composer.setReply(m),
  });
  composer = new Composer({ conv, realtime: s.realtime, members: s.members, roles: s.roles, me: s.me });
  composer.attachDropTarget(view);
  s.open.timeline = timeline;
  s.open.composer = composer;
  clear(body).append(timeline.el, composer.el);
  timeline.setMessages((messages && messages.messages) || []);
  for (const f of s.open.early) timeline.applyFrame(f);
  s.open.early = [];
  timeline.showPending(s.realtime.pending());
  if (!phone.matches) composer.focus();

  if (conv.kind === "order") {
    const order = s.orders.get(id);
    const linked = typeof conv.order === "string" ? conv.order : conv.order_id || null;
    const panel = new OrderPanel({
      me: s.me,
      orderId: linked || (order ? order.id : null),
      conv,
      members: s.members,
      realtime: s.realtime,
      onClose: () => togglePanel(s, false),
    });
    panel.el.tabIndex = -1;
    panel.el.addEventListener("keydown", (event) => {
      if (
        event.key === "Escape" &&
        phone.matches &&
        s.workspace.classList.contains("panel-open") &&
        !document.querySelector("dialog[open]")
      )
        togglePanel(s, false);
    });
    s.open.panel = panel;
    clear(s.side).append(panel.el);
    panel.load().then(() => {
      if (s.open && s.open.panel === panel && panel.order) {
        if (!s.orders.has(id)) {
          s.orders.set(id, panel.order);
          s.list.setOrder(panel.order);
          renderHeader(s);
        }
        timeline.relabel();
      }
    });
  }
}

// ---- live events -------------------------------------------------------------------

async function fetchSummary(s, id) {
  try {
    const conv = await api(`/api/conversations/${encodeURIComponent(id)}`);
    if (ws !== s || !conv) return;
    s.list.upsert({ ...conv, member_reads: undefined });
    setTitle();
  } catch (err) {
    console.warn("conversation not loaded", err);
  }
}

function onFrame(s, f) {
  const open = s.open && s.open.conv && f.conv === s.open.id ? s.open : null;
  if (open && !open.timeline && ["message", "read", "recalled", "media", "member"].includes(f.op)) open.early.push(f);
  switch (f.op) {
    case "message":
    case "read":
    case "recalled":
      if (!s.list.applyFrame(f) && f.op === "message") fetchSummary(s, f.conv);
      if (open && open.timeline) open.timeline.applyFrame(f);
      if (open && open.panel && f.op === "message") open.panel.applyMessage(f);
      setTitle();
      break;
    case "media":
    case "typing":
      if (open && open.timeline) open.timeline.applyFrame(f);
      break;
    case "member": {
      const mine = (f.users || []).includes(s.me.id);
      if (mine && (f.action === "removed" || f.action === "left")) {
        s.list.remove(f.conv);
        if (open) {
          goBack(s);
          toast(t("conv.removed"));
        }
      } else if (mine && f.action === "added") {
        fetchSummary(s, f.conv);
      } else {
        s.list.applyFrame(f);
        if (open) {
          if (f.conversation) open.conv = { ...open.conv, members: f.conversation.members };
          if (open.timeline) open.timeline.applyFrame(f);
          renderHeader(s);
        }
      }
      break;
    }
    case "order": {
      const order = f.order;
      if (!order) break;
      s.orders.set(order.conv, order);
      s.list.setOrder(order);
      if (s.open && s.open.id === order.conv) {
        if (s.open.panel) s.open.panel.applyOrder(order);
        renderHeader(s);
      }
      break;
    }
    default:
      break;
  }
}

// ---- start ---------------------------------------------------------------------------

let current = getSession();
onSessionChange((session) => {
  const before = current;
  current = session;
  if (!session) {
    if (signingOut) return;
    if (ws || !document.querySelector("[data-testid='login-form']")) showLogin(before ? t("login.expired") : null);
    return;
  }
  if (!ws || !before || before.token !== session.token) {
    if (ws && ws.session.token === session.token) return;
    boot(session);
  }
});

window.addEventListener("popstate", () => {
  if (ws && ws.ready) route(ws);
});

window.addEventListener("hashchange", () => {
  const token = joinToken();
  if (token && !ws) showJoinPage(root, token);
});

if (joinToken()) showJoinPage(root, joinToken());
else if (current) boot(current);
else showLogin();
