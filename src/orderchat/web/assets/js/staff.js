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
import { forwardPicker } from "./ui/message-actions.js";
import { newRef } from "./ref.js";
import { Composer } from "./ui/composer.js";
import { OrderPanel } from "./ui/orderpanel.js";
import { confirmDialog, formDialog, infoDialog } from "./ui/dialogs.js";
import { avatar, isAdmin, onLang, roleLabel, toast, userName } from "./ui/util.js";
import { ROLES } from "./ui/strings.js";
import { CatalogueView, pageLinks } from "./ui/catalogue.js";
import { RulesView } from "./ui/rules.js";
import { MembersPanel, newGroupDialog } from "./ui/groups.js";
import { openFileLibrary } from "./ui/files.js";
import { loadUrgent } from "./ui/urgent.js";
import "./ui/strings-convs.js";
import "./ui/strings-webfix.js";
import { AdminConsole, joinToken, showJoinPage } from "./ui/admin.js";
import { dropPush, onOpenRequest, registerServiceWorker } from "./pwa.js";
import { PushSwitch } from "./ui/push-switch.js";
import { notifyPrefsButton } from "./ui/notify-prefs.js";
import { OfflineNotice, forgetTitles, rememberTitles, storedTitles } from "./ui/offline.js";
import { revealMessage } from "./ui/jump.js";
import { MessageSearch } from "./ui/search.js";
import { showMessageAudit } from "./ui/message-audit.js";
import { CallManager } from "./ui/call.js";
import { ConsultInbox, convOf } from "./ui/consults.js";
import { ConsultPanel } from "./ui/consult-panel.js";
import { shareProductButton } from "./ui/share-product.js";
import "./ui/strings-consults.js";

const root = document.getElementById("app");
const phone = window.matchMedia("(max-width: 899px)");

/** Everything that belongs to one signed-in session; rebuilt from scratch on sign-in. */
let ws = null;

function setTitle() {
  let unread = 0;
  // A muted conversation counts only when it mentions this user.
  if (ws && ws.list)
    for (const c of ws.list.convs.values()) if (!c.muted || c.mentionSeqs.size) unread += c.unread || 0;
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
  closePage(s);
  if (s.calls) s.calls.destroy();
  if (s.inbox) s.inbox.destroy();
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
    loadFailed: false,
    welcomedWhileLoading: false,
    queue: [],
    open: null,
    offs: [],
  };
  ws = s;
  document.body.classList.add("in-app");
  buildShell(s);
  s.calls = new CallManager({
    realtime,
    me,
    nameOf: (id) => (id === me.id ? me.display_name || me.username : userName(s.members, id)),
    userOf: (id) => s.members.get(id) || null,
    titleOf: (convId) => listedTitle(s, convId),
    membersOf: (convId) => {
      const conv = s.open && s.open.id === convId ? s.open.conv : s.list.get(convId);
      return conv && Array.isArray(conv.members) ? conv.members : null;
    },
  });
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
    renderOffline(s);
  });
  on("welcome", () => {
    if (ws !== s) return;
    // A load still in flight may have failed before this welcome: it tries again when done.
    if (!s.ready) s.welcomedWhileLoading = true;
    // Whatever failed to load while the server was out of reach loads again now.
    else if (s.loadFailed) reload(s);
    else {
      retryOpen(s);
      // Pin and mute changes are not replayed (docs/conversations.md): read them again.
      refreshFlags(s);
      // Nor is how long each visitor has waited: the inbox reads its views again.
      s.inbox.load();
    }
  });
  on("reset", () => {
    if (ws === s) reload(s);
  });
  on("signedout", () => {
    if (ws !== s) return;
    // The session is over on the server, and its push subscription with it.
    dropPush(me.id);
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
  s.welcomedWhileLoading = false;
  await loadAll(s);
  if (ws !== s) return false;
  if (s.loadFailed && s.welcomedWhileLoading) return loadAndCatchUp(s);
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
    s.inbox.load(),
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
  renderOffline(s);
}

async function reload(s) {
  s.ready = false;
  if ((await loadAndCatchUp(s)) && s.open) openConversation(s, s.open.id, { keepRoute: true });
}

/** Load again the parts of the open conversation that failed (its history, its order panel). */
function retryOpen(s) {
  const o = s.open;
  if (!o) return;
  if (o.failed) openConversation(s, o.id, { keepRoute: true });
  else if (o.panel && o.panel.error && o.loadPanel) o.loadPanel();
}

/**
 * A failed load, said with a button to try again; it also retries by itself when the
 * connection comes back (the `welcome` after a reconnect).
 */
function loadFailedNotice(text, retry) {
  return h(
    "div",
    { class: "load-failed", testid: "load-failed", role: "alert" },
    h("p", { class: "op-error" }, text),
    h("p", { class: "load-failed-hint" }, t("wf.loadRetrying")),
    h(
      "button",
      { type: "button", class: "btn btn-small", testid: "load-retry", on: { click: retry } },
      icon("retry"),
      h("span", null, t("wf.loadRetry")),
    ),
  );
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
    accountMenu(s),
    s.adminLink,
    s.signoutAll,
    s.signout,
  );
  s.inbox = new ConsultInbox({
    me: s.me,
    onOpen: (convId) => selectConversation(s, convId),
    onChange: () => inboxChanged(s),
  });
  s.list = new ConvList({
    inbox: s.inbox,
    me: s.me,
    members: s.members,
    onSelect: (id) => selectConversation(s, id),
    onNewDirect: () => newDirect(s),
    onNewGroup: () => newGroup(s),
    onMenu: (c) => conversationMenu(s, c),
    onRetry: () => reload(s),
  });
  s.search = new MessageSearch({
    input: s.list.filter,
    me: s.me,
    scope: () =>
      s.open
        ? { conv: s.open.id, label: t("search.here", { title: listedTitle(s, s.open.id) || t("search.thisConv") }) }
        : null,
    titleOf: (result) => resultTitle(s, result),
    onOpen: (result) => openSearchResult(s, result),
  });
  s.list.showBelow(s.search.el);
  s.offs.push(() => s.search.destroy());
  s.main = h("main", { class: "conv-pane" });
  s.side = h("div", { class: "side-pane" });
  s.workspace = h("div", { class: "workspace" }, s.list.el, s.main, s.side);
  s.offline = new OfflineNotice();
  s.shell = h("div", { class: "shell" }, header, s.offline.el, s.workspace);
  root.append(s.shell);
  showEmpty(s);
  const onHash = () => ws === s && s.ready && route(s);
  window.addEventListener("hashchange", onHash);
  s.offs.push(() => window.removeEventListener("hashchange", onHash));
  const onPhone = () => s.workspace.classList.remove("panel-open");
  phone.addEventListener("change", onPhone);
  s.offs.push(() => phone.removeEventListener("change", onPhone));
}

/**
 * The signed-in person, opening a menu of the staff pages (#/catalogue, #/rules) and
 * the switch for notifications on this device.
 */
function accountMenu(s) {
  s.menuList = h("nav", { class: "account-menu-nav", "aria-label": t("shell.menu") }, pageLinks());
  s.push = new PushSwitch({ userId: s.me.id });
  s.notifyOpen = notifyPrefsButton({ me: s.me });
  const menu = h(
    "details",
    { class: "account-menu", testid: "account-menu" },
    h(
      "summary",
      { class: "me", title: t("shell.menu") },
      avatar(s.me, s.me.id, "sm"),
      h("span", { class: "me-text" }, s.meName, s.meRoles),
      h("span", { class: "account-menu-icon", "aria-hidden": "true" }, icon("more")),
    ),
    h(
      "div",
      { class: "account-menu-list" },
      s.menuList,
      h("div", { class: "account-menu-push" }, s.push.el, s.notifyOpen),
    ),
  );
  menu.addEventListener("click", (event) => {
    // The settings open in a dialog of their own: the menu need not stay behind it.
    if (event.target.closest("a, .notify-open")) menu.open = false;
  });
  const outside = (event) => {
    if (menu.open && !menu.contains(event.target)) menu.open = false;
  };
  const escape = (event) => {
    if (event.key === "Escape" && menu.open) menu.open = false;
  };
  document.addEventListener("click", outside);
  document.addEventListener("keydown", escape);
  s.offs.push(() => {
    document.removeEventListener("click", outside);
    document.removeEventListener("keydown", escape);
  });
  return menu;
}

function relabel(s) {
  s.signout.title = t("shell.signout");
  s.signout.setAttribute("aria-label", t("shell.signout"));
  s.signoutAll.title = t("shell.signoutAll");
  s.signoutAll.textContent = t("shell.signoutAll");
  s.meRoles.textContent = (s.me.roles || []).map(roleLabel).join(" · ");
  clear(s.menuList).append(...pageLinks());
  s.push.relabel();
  s.notifyOpen.textContent = t("np.open");
  if (s.adminLink) {
    s.adminLink.title = t("admin.menu");
    s.adminLink.setAttribute("aria-label", t("admin.menu"));
    s.adminLink.querySelector(".admin-open-label").textContent = t("admin.menu");
  }
  if (s.admin) openAdmin(s, true);
  s.shell.querySelector(".brand-name").textContent = t("app.brand");
  setConnection(s, s.realtime.state);
  if (s.open) renderHeader(s);
  else if (!s.page) showEmpty(s);
  setTitle();
}

function setConnection(s, state) {
  if (!s.connection) return;
  const noNetwork = state === "offline" && s.realtime && s.realtime.networkDown();
  const label = noNetwork ? t("wf.noNetwork") : t(`conn.${state}`);
  s.connection.dataset.state = state;
  s.connection.dataset.network = noNetwork ? "down" : "up";
  s.connection.querySelector(".conn-label").textContent = label;
  s.connection.title = label;
  renderOffline(s);
}

/**
 * The offline notice: shown while the network is down, or while the server could not
 * be reached for the starting state (a page the service worker opened from its copy).
 */
function renderOffline(s) {
  if (!s.offline || !s.realtime) return;
  const pending = s.realtime.pending();
  rememberTitles(s.me.id, pending, (id) => listedTitle(s, id));
  const kept = storedTitles(s.me.id);
  s.offline.update({
    reason: offlineReason(s),
    pending,
    titleOf: (id) => listedTitle(s, id) || kept[id] || t("pwa.offline.unknownConv"),
  });
}

/** A connection that drops and comes back while the lists are loaded is only the header's news. */
function offlineReason(s) {
  if (s.realtime.state === "online") return null;
  if (s.realtime.networkDown()) return "network";
  return s.loadFailed ? "server" : null;
}

function listedTitle(s, id) {
  const conv = s.list && s.list.get(id);
  return conv ? s.list.titleOf(conv) : null;
}

async function signOut(s, everywhere) {
  if (everywhere) {
    const ok = await confirmDialog(t("shell.signoutAll"), t("shell.signoutAllConfirm"));
    if (!ok) return;
  }
  signingOut = true;
  s.realtime.stop();
  s.realtime.forgetLocalState();
  forgetTitles(s.me.id);
  await dropPush(s.me.id);
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
      openCreated(s, conv);
    },
  });
}

async function newGroup(s) {
  const conv = await newGroupDialog({ me: s.me, members: s.members });
  if (!conv || ws !== s) return;
  openCreated(s, conv);
}

/** A conversation just made (or found) by this user: into the list, and open it. */
function openCreated(s, conv) {
  s.list.upsert({
    read_seq: 0,
    unread: 0,
    last_message: null,
    last_activity_ts: conv.created_ts,
    ...s.list.get(conv.id),
    ...conv,
  });
  selectConversation(s, conv.id);
}

/**
 * Re-read the list's server-computed flags, settings and urgent counts after events.
 * Throttled, not debounced: a steady stream of events still refreshes about once a second.
 */
function refreshFlags(s) {
  if (s.flagTimer) return;
  s.flagTimer = setTimeout(async () => {
    s.flagTimer = null;
    try {
      const found = await api("/api/conversations");
      if (ws === s && found) s.list.refreshFlags(found.conversations || []);
    } catch (err) {
      console.warn("conversation flags not refreshed", err);
    }
  }, 800);
}

async function changeSettings(s, conv, body) {
  try {
    const answer = await api(`/api/conversations/${encodeURIComponent(conv.id)}/settings`, { method: "POST", body });
    if (ws !== s || !answer) return;
    s.list.applySettings(answer);
    renderHeader(s);
  } catch (err) {
    toast(t("pin.failed", { message: errorText(err) }), "error");
  }
}

/** The list's context menu (right click): pin and mute without opening the conversation. */
function conversationMenu(s, c) {
  const item = (testid, label, body) =>
    h(
      "button",
      {
        type: "button",
        class: "btn btn-block",
        testid,
        on: {
          click: () => {
            if (dialog.open) dialog.close();
            changeSettings(s, c, body);
          },
        },
      },
      label,
    );
  const dialog = infoDialog(
    s.list.titleOf(c),
    h(
      "div",
      { class: "conv-menu", testid: "conv-menu" },
      item("conv-menu-pin", c.pinned ? t("pin.unpin") : t("pin.pin"), { pinned: !c.pinned }),
      item("conv-menu-mute", c.muted ? t("pin.unmute") : t("pin.mute"), { muted: !c.muted }),
    ),
  );
}

function openMembers(s) {
  const o = s.open;
  if (!o) return;
  const panel = new MembersPanel({
    me: s.me,
    members: s.members,
    conv: o.conv,
    onLeft: () => {
      if (dialog.open) dialog.close();
    },
  });
  const dialog = infoDialog(t("grp.membersTitle", { count: (o.conv.members || []).length }), panel.el);
  o.membersPanel = panel;
  dialog.addEventListener("close", () => {
    if (o.membersPanel === panel) o.membersPanel = null;
  });
}

function openFiles(s) {
  const o = s.open;
  if (!o) return;
  const order = s.orders.get(o.id);
  const linked = typeof o.conv.order === "string" ? o.conv.order : null;
  openFileLibrary({ convId: o.id, orderId: linked || (order ? order.id : null), members: s.members });
}

// ---- routing -------------------------------------------------------------------------

// `#/c/<conv>`, or `#/c/<conv>/m/<seq>` for one message of it (a notification's link).
const CONV_ROUTE = /^#\/c\/([A-Za-z0-9_-]+)(?:\/m\/([1-9][0-9]*))?$/;

function routeConv() {
  const m = location.hash.match(CONV_ROUTE);
  return m ? m[1] : null;
}

function routeSeq() {
  const m = location.hash.match(CONV_ROUTE);
  return m && m[2] ? Number(m[2]) : null;
}

// The console's sections: `#/admin` is the staff table.
const ADMIN_ROUTE = /^#\/admin(?:\/(webhooks|audit|retention|proof|consults))?$/;

function adminSection() {
  const m = location.hash.match(ADMIN_ROUTE);
  return m ? m[1] || "staff" : null;
}

function openAdmin(s, rebuild) {
  const section = adminSection() || "staff";
  if (s.admin && !rebuild && s.admin.section === section) return;
  closeAdmin(s);
  closePage(s);
  closeConversation(s, true);
  s.admin = new AdminConsole({ me: s.me, section });
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

function routePage() {
  const m = location.hash.match(/^#\/(catalogue|rules)$/);
  return m ? m[1] : null;
}

function route(s) {
  const token = joinToken();
  if (token) {
    teardown();
    showJoinPage(root, token);
    return;
  }
  if (adminSection() && isAdmin(s.me)) {
    openAdmin(s);
    return;
  }
  closeAdmin(s);
  const page = routePage();
  if (page) {
    showPage(s, page);
    return;
  }
  if (s.page) {
    closePage(s);
    if (!routeConv()) showEmpty(s);
  }
  const id = routeConv();
  const seq = routeSeq();
  if (id && (!s.open || s.open.id !== id)) openConversation(s, id, {});
  else if (!id && s.open) {
    closeConversation(s);
    showEmpty(s);
  }
  if (id && seq) {
    // The address keeps the conversation only, so the same link followed again is a
    // change the router hears.
    history.replaceState(null, "", `#/c/${id}`);
    revealInConversation(s, id, seq);
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

/** A staff page in place of the conversation: it spans the workspace beside the list. */
function showPage(s, name) {
  if (s.page && s.page.name === name) return;
  closeConversation(s);
  closePage(s);
  const view = name === "catalogue" ? new CatalogueView({ me: s.me }) : new RulesView();
  s.page = { name, view };
  clear(s.main).append(view.el);
  clear(s.side);
  s.workspace.classList.remove("has-panel", "panel-open");
  s.workspace.classList.add("show-conv", "page-open");
  s.list.setActive(null);
}

function closePage(s) {
  if (!s.page) return;
  s.page.view.destroy();
  s.page = null;
  s.workspace.classList.remove("page-open");
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
  if (!quiet && s.inbox) s.inbox.setActive(null);
  // Quietly closed, another opens next (or the session ends): "only here" follows that.
  if (!quiet && s.search) s.search.scopeChanged();
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
  const listed = s.list.get(conv.id) || conv;
  const headBtn = (testid, label, iconName, onClick, pressed) =>
    h(
      "button",
      {
        type: "button",
        class: [iconName ? "icon-btn" : "btn btn-small btn-quiet", "conv-head-btn", pressed ? "active" : null],
        testid,
        title: label,
        "aria-label": label,
        "aria-pressed": pressed === undefined ? null : pressed ? "true" : "false",
        on: { click: onClick },
      },
      iconName ? icon(iconName) : label,
    );
  const parts = [
    back,
    h(
      "div",
      {
        class: "conv-head-text conv-head-open",
        testid: "conv-head-open",
        title: t("lib.open"),
        on: { click: () => openFiles(s) },
      },
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
    h(
      "div",
      { class: "conv-head-tools" },
      // With the customer in the conversation, a call may ring everyone or the staff only.
      s.calls ? s.calls.buttons(conv, { choice: hasCustomer(s, conv) }) : null,
      headBtn("conv-files", t("lib.open"), "file", () => openFiles(s)),
      conv.kind === "channel" ? headBtn("conv-members", t("grp.members"), "users", () => openMembers(s)) : null,
      headBtn(
        "conv-pin",
        listed.pinned ? t("pin.unpin") : t("pin.pin"),
        "pin",
        () => changeSettings(s, conv, { pinned: !listed.pinned }),
        Boolean(listed.pinned),
      ),
      headBtn(
        "conv-mute",
        listed.muted ? t("pin.unmute") : t("pin.mute"),
        "bellOff",
        () => changeSettings(s, conv, { muted: !listed.muted }),
        Boolean(listed.muted),
      ),
    ),
    conv.kind === "order"
      ? h(
          "button",
          {
            type: "button",
            class: "btn btn-small conv-panel-toggle",
            testid: "order-panel-toggle",
            // The name holds the visible word, so "Order" said aloud finds the button.
            "aria-label": t("conv.orderPanel"),
            title: t("conv.orderPanel"),
            "aria-expanded": s.workspace.classList.contains("panel-open") ? "true" : "false",
            on: { click: () => togglePanel(s) },
          },
          icon("order"),
          h("span", { class: "conv-panel-toggle-full" }, t("conv.orderPanel")),
          h("span", { class: "conv-panel-toggle-short" }, t("wf.orderToggle")),
        )
      : null,
    conv.kind === "consult"
      ? h(
          "button",
          {
            type: "button",
            class: "btn btn-small conv-panel-toggle",
            testid: "consult-panel-toggle",
            "aria-label": t("cs.panel"),
            title: t("cs.panel"),
            "aria-expanded": s.workspace.classList.contains("panel-open") ? "true" : "false",
            on: { click: () => togglePanel(s) },
          },
          icon("user"),
          h("span", { class: "conv-panel-toggle-full" }, t("cs.panel")),
          h("span", { class: "conv-panel-toggle-short" }, t("cs.panelToggle")),
        )
      : null,
  ];
  o.header.append(...parts.filter(Boolean));
}

/** Whether a customer is among an order conversation's members (their devices could ring). */
function hasCustomer(s, conv) {
  if (conv.kind !== "order") return false;
  return (conv.members || []).some((id) => {
    const user = s.members.get(id);
    return Boolean(user && user.kind === "customer");
  });
}

function togglePanel(s, force) {
  const open = force === undefined ? !s.workspace.classList.contains("panel-open") : force;
  s.workspace.classList.toggle("panel-open", open);
  const btn = s.open && s.open.header ? s.open.header.querySelector(".conv-panel-toggle") : null;
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
  s.workspace.classList.toggle("has-panel", hasSidePanel(summary));
  s.list.setActive(id);
  s.inbox.setActive(id);
  s.search.scopeChanged();
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
    if (err instanceof ApiError && err.status === 403) {
      clear(body).append(h("p", { class: "op-error", role: "alert" }, t("conv.removed")));
      return;
    }
    // A refusal (a conversation that is gone) stays refused: only an unreachable or
    // failing server is worth asking again by itself.
    s.open.failed = !(err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 429);
    clear(body).append(
      loadFailedNotice(t("conv.loadFailed", { message: errorText(err) }), () =>
        openConversation(s, id, { keepRoute: true }),
      ),
    );
    return;
  }
  if (!s.open || s.open.token !== token || ws !== s) return;
  s.open.conv = conv;
  s.list.upsert({ ...conv, member_reads: undefined });
  view.dataset.kind = conv.kind;
  s.workspace.classList.toggle("has-panel", hasSidePanel(conv));
  renderHeader(s);

  let composer = null;
  const timeline = new Timeline({
    me: s.me,
    members: s.members,
    conv,
    realtime: s.realtime,
    onReply: (m) => composer && composer.setReply(m),
    onForward: (m) => forwardMessage(s, m),
    onOpenOriginal: (link) => openOriginal(s, link),
  });
  composer = new Composer({
    conv,
    realtime: s.realtime,
    members: s.members,
    roles: s.roles,
    me: s.me,
    tools: [shareProductButton(() => (s.open ? s.open.id : null))],
  });
  composer.attachDropTarget(view);
  s.open.timeline = timeline;
  s.open.composer = composer;
  clear(body).append(timeline.el, composer.el);
  timeline.setMessages((messages && messages.messages) || []);
  for (const f of s.open.early) timeline.applyFrame(f);
  s.open.early = [];
  timeline.showPending(s.realtime.pending());
  if (!phone.matches) composer.focus();
  loadUrgent(id)
    .then((list) => {
      if (s.open && s.open.timeline === timeline) timeline.setUrgentState(list);
    })
    .catch((err) => console.warn("urgent state not loaded", err));

  if (conv.kind === "consult") openConsultPanel(s, conv);
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
    const loadPanel = () =>
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
    s.open.loadPanel = loadPanel;
    panel.onRetry = loadPanel;
    loadPanel();
  }
}

// ---- consults ---------------------------------------------------------------------------

/** Whether a conversation shows a side panel beside it (an order's, a consult's). */
function hasSidePanel(conv) {
  return conv.kind === "order" || conv.kind === "consult";
}

/** The consult's panel beside its conversation: the visitor, the way in, history, actions. */
function openConsultPanel(s, conv) {
  const panel = new ConsultPanel({
    me: s.me,
    convId: conv.id,
    consult: s.inbox.byConv(conv.id),
    staff: () => Array.from(s.members.values()),
    roles: s.roles,
    onOpenConv: (id) => selectConversation(s, id),
    onOrder: (order) => openOrder(s, order),
    onConsult: (consult) => s.inbox.upsert(consult),
    onClose: () => togglePanel(s, false),
    knownOrder: (convId) => (convId ? s.orders.get(convId) : undefined),
  });
  panel.el.tabIndex = -1;
  s.open.panel = panel;
  clear(s.side).append(panel.el);
  s.open.loadPanel = () => panel.load();
  panel.onRetry = s.open.loadPanel;
  panel.load();
}

/** The order just made from a consult: into the list, and open its conversation. */
async function openOrder(s, order) {
  if (!order || !order.conv) return;
  s.orders.set(order.conv, order);
  s.list.setOrder(order);
  if (!s.list.get(order.conv)) await fetchSummary(s, order.conv);
  if (ws === s) selectConversation(s, order.conv);
}

/**
 * The inbox changed: its visitors become names the timeline knows, the list marks each
 * consult conversation's status, the tab counts, and the open consult's panel follows.
 */
function inboxChanged(s) {
  let named = false;
  for (const c of s.inbox.consults.values()) {
    const v = c.visitor;
    const known = v && v.id ? s.members.get(v.id) : null;
    if (v && v.id && (!known || known.placeholder || (known.visitor && known.display_name !== v.display_name))) {
      named = true;
      s.members.set(v.id, {
        id: v.id,
        display_name: v.display_name || t("cs.visitorFallback"),
        kind: "customer",
        roles: [],
        visitor: true,
      });
    }
    s.list.setConsult(c, convOf(c));
  }
  s.list.refreshTabs();
  const o = s.open;
  // A visitor named only now: the open conversation shows their name on what they wrote.
  if (named && o && o.timeline && o.conv && o.conv.kind === "consult") o.timeline.relabel();
  if (o && o.panel && o.panel instanceof ConsultPanel) {
    const c = s.inbox.byConv(o.id);
    if (c) o.panel.applyConsult(c);
  }
}

// ---- forwarding ------------------------------------------------------------------------

/** Pick a conversation and forward `m` there; a staff note stays one by default. */
async function forwardMessage(s, m) {
  const from = s.open ? s.open.id : m.conv;
  const conversations = [...s.list.convs.values()].map((c) => ({ id: c.id, kind: c.kind, title: s.list.titleOf(c) }));
  const chosen = await forwardPicker({
    conversations,
    staff: true,
    internal: Boolean(m.internal),
    send: (conv, internal) => {
      const frame = { op: "send", ref: newRef(), conv: conv.id, forward: { conv: from, seq: m.seq } };
      if (internal) frame.internal = true;
      return s.realtime.send(frame);
    },
  });
  if (chosen) toast(t("msgs.forwardDone", { title: chosen.title }));
}

/** Open the conversation of a forward's original and show the message, when one may. */
async function openOriginal(s, link) {
  if (!s.list.convs.has(link.conv)) {
    toast(t("msgs.originalHidden"), "error");
    return;
  }
  selectConversation(s, link.conv);
  await revealInConversation(s, link.conv, link.seq);
}

// ---- message search ------------------------------------------------------------------

/** A search result's place as the list names it, with its order's number. */
function resultTitle(s, result) {
  const title = listedTitle(s, result.conversation.id) || result.conversation.title || "";
  const number = result.order && result.order.number;
  if (number && !title.includes(number)) return title ? `${number} · ${title}` : number;
  return title || t("list.channels");
}

/** Open a search result's conversation at its message, loading older pages as needed. */
async function openSearchResult(s, result) {
  const id = result.conversation.id;
  // An audit search finds what the admin cannot open in place: a recalled message, or
  // one in a conversation they are not in. Its audit record shows instead.
  if (result.audit && (result.recalled || !(s.list && s.list.get(id)))) {
    showMessageAudit(result, resultTitle(s, result), (uid) => userName(s.members, uid));
    return;
  }
  selectConversation(s, id);
  const shown = await revealInConversation(s, id, result.message.seq);
  if (!shown && ws === s && s.open && s.open.id === id && s.open.timeline) toast(t("err.not_found"), "error");
}

/** Show message `seq` of conversation `id`, which is open or opening. */
function revealInConversation(s, id, seq) {
  return revealMessage(
    {
      timeline: () => (s.open && s.open.id === id ? s.open.timeline : null),
      active: () => ws === s && Boolean(s.open) && s.open.id === id,
    },
    seq,
  );
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
  if (open && !open.timeline && ["message", "read", "recalled", "media", "member", "message_edited"].includes(f.op))
    open.early.push(f);
  switch (f.op) {
    case "message":
    case "read":
    case "recalled":
      if (f.op === "message") s.inbox.applyFrame(f);
      if (!s.list.applyFrame(f) && f.op === "message") fetchSummary(s, f.conv);
      if (open && open.timeline) open.timeline.applyFrame(f);
      if (open && open.panel && f.op === "message") open.panel.applyMessage(f);
      setTitle();
      refreshFlags(s);
      break;
    case "handled":
      if (open && open.timeline) open.timeline.applyFrame(f);
      refreshFlags(s);
      break;
    case "settings":
      s.list.applySettings(f);
      if (open) renderHeader(s);
      setTitle();
      break;
    case "message_edited":
      s.list.applyFrame(f);
      if (open && open.timeline) open.timeline.applyFrame(f);
      break;
    case "media":
    case "typing":
    case "command_reply":
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
          if (f.conversation)
            open.conv = { ...open.conv, members: f.conversation.members, title: f.conversation.title };
          if (open.timeline) open.timeline.applyFrame(f);
          if (open.membersPanel) open.membersPanel.update(open.conv);
          renderHeader(s);
        }
      }
      break;
    }
    case "order": {
      const order = f.order;
      if (!order) break;
      refreshFlags(s);
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

// A clicked notification names a message: `/#/c/<conv>/m/<seq>`.
onOpenRequest((url) => {
  if (!url.hash) return;
  if (location.hash !== url.hash) location.hash = url.hash;
  else if (ws && ws.ready) route(ws);
});
registerServiceWorker();

window.addEventListener("hashchange", () => {
  const token = joinToken();
  if (token && !ws) showJoinPage(root, token);
});

if (joinToken()) showJoinPage(root, joinToken());
else if (current) boot(current);
else showLogin();
