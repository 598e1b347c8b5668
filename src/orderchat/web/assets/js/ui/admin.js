/**
 * The admin console (`#/admin`): the staff table with adding, invitation links, roles,
 * disabling, password-reset links and signing people out; the outbound webhooks
 * (`#/admin/webhooks`, ui/webhooks.js); the audit log (`#/admin/audit`,
 * ui/audit-log.js), retention and proof (`#/admin/retention`, `#/admin/proof`,
 * ui/evidence.js), the ways into consults (`#/admin/consults`, ui/consult-admin.js);
 * and the page a staff link
 * (`#/join/TOKEN`) opens, where a new person or one whose password was reset sets it.
 * Every call goes to `/api/admin/...` (docs/http-api.md); the server refuses non-admins.
 */

import { h, clear } from "../dom.js";
import { getLang, langSwitcher, t } from "../i18n.js";
import { ApiError, api, errorText } from "../api.js";
import { deviceLabel, setSession } from "../session.js";
import { confirmDialog, formDialog, infoDialog } from "./dialogs.js";
import { icon } from "./icons.js";
import { ROLES } from "./strings.js";
import { avatar, roleLabel, toast } from "./util.js";
import { WebhooksView } from "./webhooks.js";
import { AuditView } from "./audit-log.js";
import { ProofView, RetentionView } from "./evidence.js";
import { ConsultsAdminView } from "./consult-admin.js";
import "./strings-admin.js";
import "./strings-evidence.js";

/** The sections besides the staff table: each a view with `el`, `load()` and `destroy()`, and its title. */
const VIEWS = {
  webhooks: { make: () => new WebhooksView(), title: "hooks.title" },
  audit: { make: () => new AuditView(), title: "audit.title" },
  retention: { make: () => new RetentionView(), title: "ret.title" },
  proof: { make: () => new ProofView(), title: "proof.title" },
  consults: { make: () => new ConsultsAdminView(), title: "cs.admin.title" },
};

/** Sections of the console; the catalogue and rules views live at their own hashes. */
const TABS = [
  { hash: "#/admin", key: "admin.tab.staff", section: "staff" },
  { hash: "#/admin/webhooks", key: "admin.tab.webhooks", section: "webhooks" },
  { hash: "#/admin/audit", key: "admin.tab.audit", section: "audit" },
  { hash: "#/admin/retention", key: "admin.tab.retention", section: "retention" },
  { hash: "#/admin/proof", key: "admin.tab.proof", section: "proof" },
  { hash: "#/admin/consults", key: "admin.tab.consults", section: "consults" },
  { hash: "#/catalogue", key: "admin.tab.catalogue" },
  { hash: "#/rules", key: "admin.tab.rules" },
];

function when(ts) {
  return new Date(ts).toLocaleString(getLang(), { dateStyle: "medium", timeStyle: "short" });
}

function nameOf(person) {
  return person.display_name || person.username;
}

function roleFields(selected) {
  return ROLES.map((role) => ({
    name: `role_${role}`,
    label: roleLabel(role),
    type: "checkbox",
    value: selected.includes(role),
  }));
}

/**
 * The roles ticked in a form's values; throws a message for the dialog when none is.
 * @param {object} values
 * @returns {string[]}
 */
function pickedRoles(values) {
  const roles = ROLES.filter((role) => values[`role_${role}`]);
  if (roles.length === 0) {
    const err = new Error("no role");
    err.userMessage = t("admin.rolesRequired");
    throw err;
  }
  return roles;
}

/** Show a staff link once, with a copy button: its token is never shown again. */
function showLink(issued, who) {
  const url = new URL(issued.path, location.origin).href;
  const field = h("input", { class: "admin-link", testid: "admin-link", readonly: true, value: url });
  const copy = h("button", { type: "button", class: "btn btn-primary", testid: "admin-copy" }, t("admin.copy"));
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(url);
      copy.textContent = t("admin.copied");
    } catch {
      field.select();
      toast(t("admin.copyFailed"), "error");
    }
  });
  field.addEventListener("focus", () => field.select());
  infoDialog(t("admin.linkTitle", { name: who }), [
    h("div", { class: "admin-link-row" }, field, copy),
    h("p", { class: "hint" }, t("admin.linkExpires", { when: when(issued.expires_ts) })),
  ]);
}

export class AdminConsole {
  /**
   * @param {{me: object, section?: "staff"|"webhooks"|"audit"|"retention"|"proof"|"consults"}} options
   *   the signed-in admin, and the section the address names
   */
  constructor({ me, section = "staff" }) {
    this.me = me;
    this.section = VIEWS[section] ? section : "staff";
    this.staff = [];
    this.view = VIEWS[section] ? VIEWS[section].make() : null;
    this.hooks = section === "webhooks" ? this.view : null;
    this.status = h("p", { class: "admin-status", role: "status" }, t("admin.loading"));
    this.body = h("div", { class: "admin-body" });
    const tabs = h(
      "nav",
      { class: "admin-tabs", "aria-label": t("admin.tabs") },
      TABS.map((tab) => {
        const here = tab.section === section;
        return h(
          "a",
          {
            href: tab.hash,
            class: here ? "admin-tab active" : "admin-tab",
            "aria-current": here ? "page" : null,
            testid: `admin-tab-${tab.key.split(".").pop()}`,
          },
          t(tab.key),
        );
      }),
    );
    const button = (key, testid, fn, cls = "btn btn-small") =>
      h("button", { type: "button", class: cls, testid, on: { click: fn } }, t(key));
    const actions = this.hooks
      ? [button("hooks.add", "hooks-add", () => this.hooks.add(), "btn btn-small btn-primary")]
      : this.view
        ? []
        : [
            button("admin.add", "admin-add", () => this.add(), "btn btn-small btn-primary"),
            button("admin.invite", "admin-invite", () => this.invite()),
          ];
    this.el = h(
      "section",
      { class: "admin", testid: "admin-console", "aria-labelledby": "admin-title" },
      h(
        "header",
        { class: "admin-head" },
        h("a", { href: "#/", class: "btn btn-small btn-quiet", testid: "admin-back" }, icon("back"), t("admin.back")),
        h("h1", { id: "admin-title", class: "admin-title" }, t(this.view ? VIEWS[section].title : "admin.title")),
        h(
          "div",
          { class: "admin-actions" },
          actions,
          button("admin.refresh", "admin-refresh", () => this.load()),
        ),
      ),
      tabs,
      this.view ? this.view.el : [this.status, this.body],
    );
  }

  async load() {
    // On a phone the tabs scroll sideways: keep the one shown in sight.
    const here = this.el.querySelector(".admin-tab.active");
    if (here && this.el.isConnected) here.scrollIntoView({ block: "nearest", inline: "nearest" });
    if (this.view) {
      await this.view.load();
      return;
    }
    try {
      const answer = await api("/api/admin/staff");
      this.staff = answer.staff || [];
      this.status.hidden = true;
      this.render();
    } catch (err) {
      this.status.hidden = false;
      this.status.textContent = t("admin.loadFailed", { message: errorText(err) });
    }
  }

  destroy() {
    if (this.view) this.view.destroy();
    this.el.remove();
  }

  render() {
    const head = h(
      "tr",
      ["name", "username", "roles", "state", "actions"].map((c) => h("th", { scope: "col" }, t(`admin.col.${c}`))),
    );
    const rows = this.staff.map((person) => this.row(person));
    clear(this.body).append(
      h("table", { class: "admin-table", testid: "admin-table" }, h("thead", head), h("tbody", rows)),
    );
  }

  row(person) {
    const me = person.id === this.me.id;
    const act = (key, fn, cls = "btn btn-small") =>
      h(
        "button",
        { type: "button", class: cls, testid: `admin-${key}`, on: { click: () => fn(person) } },
        t(`admin.${key}`),
      );
    const seen =
      person.last_sign_in_ts === null || person.last_sign_in_ts === undefined
        ? t("admin.neverSignedIn")
        : t("admin.lastSignIn", { when: when(person.last_sign_in_ts) });
    return h(
      "tr",
      { testid: "admin-row", dataset: { username: person.username, disabled: person.disabled ? "true" : "false" } },
      h(
        "td",
        h(
          "div",
          { class: "admin-name" },
          avatar(person, person.id, "sm"),
          h("span", nameOf(person)),
          me ? h("span", { class: "admin-you" }, t("admin.you")) : null,
        ),
      ),
      h("td", h("code", { class: "admin-username" }, person.username)),
      h(
        "td",
        h(
          "div",
          { class: "admin-roles", testid: "admin-roles" },
          person.roles.map((r) => h("span", { class: "admin-role" }, roleLabel(r))),
        ),
      ),
      h(
        "td",
        h(
          "span",
          { class: person.disabled ? "admin-state off" : "admin-state on", testid: "admin-state" },
          t(person.disabled ? "admin.state.disabled" : "admin.state.enabled"),
        ),
        h(
          "span",
          { class: "admin-seen" },
          person.active_sessions > 0 ? t("admin.sessions", { count: person.active_sessions }) : seen,
        ),
      ),
      h(
        "td",
        h(
          "div",
          { class: "admin-row-actions" },
          act("editRoles", (p) => this.editRoles(p)),
          me
            ? null
            : person.disabled
              ? act("enable", (p) => this.setDisabled(p, false))
              : act("disable", (p) => this.setDisabled(p, true), "btn btn-small btn-danger-outline"),
          person.disabled ? null : act("reset", (p) => this.reset(p)),
          person.disabled || me ? null : act("signOut", (p) => this.signOut(p)),
        ),
      ),
    );
  }

  async add() {
    const added = await formDialog({
      title: t("admin.add"),
      fields: [
        { name: "username", label: t("admin.field.username"), required: true, hint: t("admin.field.usernameHint") },
        { name: "display_name", label: t("admin.field.name"), hint: t("admin.field.nameHint") },
        {
          name: "password",
          label: t("admin.field.password"),
          type: "password",
          required: true,
          hint: t("admin.field.passwordHint"),
        },
        { type: "info", content: h("p", { class: "admin-roles-label" }, t("admin.field.roles")) },
        ...roleFields([]),
      ],
      submitLabel: t("admin.add"),
      onSubmit: async (v) => {
        const roles = pickedRoles(v);
        const body = { username: v.username, password: v.password, roles };
        if (v.display_name) body.display_name = v.display_name;
        return api("/api/admin/staff", { method: "POST", body });
      },
    });
    if (!added) return;
    toast(t("admin.added", { name: nameOf(added) }));
    await this.load();
  }

  async invite() {
    const issued = await formDialog({
      title: t("admin.inviteTitle"),
      intro: h("p", t("admin.inviteIntro")),
      fields: [
        { name: "username", label: t("admin.field.username"), required: true, hint: t("admin.field.usernameHint") },
        { name: "display_name", label: t("admin.field.name"), hint: t("admin.field.nameHint") },
        { type: "info", content: h("p", { class: "admin-roles-label" }, t("admin.field.roles")) },
        ...roleFields([]),
      ],
      submitLabel: t("admin.inviteCreate"),
      onSubmit: async (v) => {
        const roles = pickedRoles(v);
        const body = { username: v.username, roles };
        if (v.display_name) body.display_name = v.display_name;
        return api("/api/admin/invitations", { method: "POST", body });
      },
    });
    if (issued) showLink(issued, issued.display_name || issued.username);
  }

  async editRoles(person) {
    const saved = await formDialog({
      title: t("admin.rolesTitle", { name: nameOf(person) }),
      intro: h("p", t("admin.rolesIntro")),
      fields: roleFields(person.roles),
      onSubmit: async (v) =>
        api(`/api/admin/staff/${encodeURIComponent(person.username)}/roles`, {
          method: "PUT",
          body: { roles: pickedRoles(v) },
        }),
    });
    if (!saved) return;
    toast(t("admin.rolesSaved", { name: nameOf(person) }));
    await this.load();
  }

  async setDisabled(person, disabled) {
    const path = `/api/admin/staff/${encodeURIComponent(person.username)}/${disabled ? "disable" : "enable"}`;
    if (disabled) {
      const done = await formDialog({
        title: t("admin.disableTitle", { name: nameOf(person) }),
        fields: [{ type: "info", content: h("p", t("admin.disableText")) }],
        danger: true,
        submitLabel: t("admin.disable"),
        onSubmit: async () => api(path, { method: "POST" }),
      });
      if (!done) return;
      toast(t("admin.disabled", { name: nameOf(person), count: done.ended_sessions }));
    } else {
      try {
        await api(path, { method: "POST" });
        toast(t("admin.enabled", { name: nameOf(person) }));
      } catch (err) {
        toast(errorText(err), "error");
      }
    }
    await this.load();
  }

  async reset(person) {
    const issued = await formDialog({
      title: t("admin.resetTitle", { name: nameOf(person) }),
      fields: [{ type: "info", content: h("p", t("admin.resetText")) }],
      submitLabel: t("admin.resetCreate"),
      onSubmit: async () =>
        api(`/api/admin/staff/${encodeURIComponent(person.username)}/password-reset`, { method: "POST" }),
    });
    if (issued) showLink(issued, nameOf(person));
  }

  async signOut(person) {
    const ok = await confirmDialog(t("admin.signOutTitle", { name: nameOf(person) }), t("admin.signOutText"));
    if (!ok) return;
    try {
      const done = await api(`/api/admin/staff/${encodeURIComponent(person.username)}/sign-out`, { method: "POST" });
      toast(t("admin.signedOut", { name: nameOf(person), count: done.ended_sessions }));
    } catch (err) {
      toast(errorText(err), "error");
    }
    await this.load();
  }
}

// ---- the page a staff link opens ---------------------------------------------------

/**
 * The token of a staff link in the address (`#/join/TOKEN`), or null.
 * @returns {string|null}
 */
export function joinToken() {
  const m = location.hash.match(/^#\/join\/([A-Za-z0-9_-]{1,256})$/);
  return m ? m[1] : null;
}

function leaveJoinRoute() {
  history.replaceState(null, "", location.pathname + location.search);
}

/**
 * Render the staff-link page into `root`. On success the new session is stored, which
 * opens the workspace (staff.js listens for session changes).
 * @param {HTMLElement} root
 * @param {string} token
 */
export async function showJoinPage(root, token) {
  document.body.classList.remove("in-app");
  const card = h("div", { class: "login-card", testid: "join-page" });
  clear(root).append(h("main", { class: "login-screen" }, card));
  card.append(h("p", { class: "login-sub" }, t("join.checking")));
  let link;
  try {
    link = await api("/api/staff-links/check", { method: "POST", body: { token }, auth: false });
  } catch (err) {
    const toLogin = h(
      "a",
      { href: "#/", class: "btn btn-primary btn-block", testid: "join-to-login" },
      t("join.toLogin"),
    );
    toLogin.addEventListener("click", () => setTimeout(() => location.reload(), 0));
    clear(card).append(
      h("h1", { class: "login-title" }, t("join.badLink")),
      h(
        "p",
        { class: "login-error", testid: "join-error", role: "alert" },
        err instanceof ApiError ? err.message : errorText(err),
      ),
      toLogin,
      h("div", { class: "login-foot" }, langSwitcher()),
    );
    return;
  }
  const invite = link.kind === "invite";
  const error = h("p", { class: "login-error", testid: "join-error", role: "alert", hidden: true });
  const name = h("input", {
    id: "join-name",
    testid: "join-name",
    autocomplete: "name",
    maxlength: 100,
    value: link.display_name || "",
  });
  const password = h("input", {
    id: "join-password",
    type: "password",
    testid: "join-password",
    autocomplete: "new-password",
    required: true,
  });
  const again = h("input", {
    id: "join-password2",
    type: "password",
    testid: "join-password2",
    autocomplete: "new-password",
    required: true,
  });
  const submit = h(
    "button",
    { type: "submit", class: "btn btn-primary btn-block", testid: "join-submit" },
    t("join.submit"),
  );
  const form = h(
    "form",
    { class: "login-form", testid: "join-form", novalidate: true },
    h(
      "div",
      { class: "field" },
      h("label", { for: "join-username" }, t("join.username")),
      h("input", { id: "join-username", value: link.username, readonly: true, autocomplete: "username" }),
    ),
    invite ? h("div", { class: "field" }, h("label", { for: "join-name" }, t("join.name")), name) : null,
    h("div", { class: "field" }, h("label", { for: "join-password" }, t("join.password")), password),
    h("div", { class: "field" }, h("label", { for: "join-password2" }, t("join.password2")), again),
    h("p", { class: "hint" }, t("admin.field.passwordHint")),
    error,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    if (password.value !== again.value) {
      error.textContent = t("join.mismatch");
      error.hidden = false;
      again.focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = t("join.busy");
    const body = { token, password: password.value, device: deviceLabel() };
    if (invite && name.value.trim()) body.display_name = name.value.trim();
    try {
      const session = await api("/api/staff-links/accept", { method: "POST", body, auth: false });
      leaveJoinRoute();
      setSession(session);
    } catch (err) {
      submit.disabled = false;
      submit.textContent = t("join.submit");
      error.textContent = err instanceof ApiError ? err.message : errorText(err);
      error.hidden = false;
      password.select();
    }
  });
  const roles = (link.roles || []).map(roleLabel).join(getLang() === "en" ? ", " : "、");
  clear(card).append(
    h(
      "div",
      { class: "brand brand-lg" },
      h("span", { class: "brand-mark", "aria-hidden": "true" }, icon("chat")),
      h("span", t("app.brand")),
    ),
    h("h1", { class: "login-title" }, t(invite ? "join.title" : "join.resetTitle")),
    h(
      "p",
      { class: "login-sub" },
      invite ? t("join.intro", { roles }) : t("join.resetIntro", { username: link.username }),
    ),
    form,
    h("div", { class: "login-foot" }, langSwitcher()),
  );
  (invite ? name : password).focus();
}
