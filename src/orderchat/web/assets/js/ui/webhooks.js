/**
 * The admin console's webhooks tab (`#/admin/webhooks`): the shop's outbound endpoints
 * (/api/admin/webhooks, docs/notifications.md), adding one (its secret is shown once),
 * changing, disabling and deleting them, and each one's delivery log, newest first.
 */

import { h, clear } from "../dom.js";
import { t, tOr } from "../i18n.js";
import { api, errorText } from "../api.js";
import { fmtDateTime } from "../format.js";
import { confirmDialog, formDialog, infoDialog } from "./dialogs.js";
import { toast } from "./util.js";
import "./strings-webhooks.js";

const TOPICS = [
  "order.created",
  "order.status",
  "order.exception",
  "payment.received",
  "confirmation",
  "message.urgent",
  "consult.new",
];
const FORMATS = ["orderchat", "wecom", "dingtalk"];
const LANGUAGES = ["zh-CN", "en"];
const LOG_PAGE = 50;
// The server takes at most this many per page.
const LOG_MAX = 200;
const LOG_REFRESH_S = 4;

const topicField = (topic) => `topic_${topic.replace(/\./g, "_")}`;
const topicLabel = (topic) => tOr(`hooks.topic.${topic}`, topic);
const formatLabel = (format) => tOr(`hooks.format.${format}`, format);

function hookPath(hook, rest = "") {
  return `/api/admin/webhooks/${encodeURIComponent(hook.id)}${rest}`;
}

/** The fields of the add and edit forms; `hook` fills them for an edit. */
function hookFields(hook) {
  const editing = Boolean(hook);
  const chosen = hook ? hook.topics : ["order.status"];
  return [
    {
      name: "url",
      label: t("hooks.field.url"),
      required: true,
      placeholder: "https://",
      maxlength: 2048,
      value: hook ? hook.url : "",
      hint: t("hooks.field.urlHint"),
    },
    { type: "info", content: h("p", { class: "admin-roles-label" }, t("hooks.field.topics")) },
    ...TOPICS.map((topic) => ({
      name: topicField(topic),
      label: topicLabel(topic),
      type: "checkbox",
      value: chosen.includes(topic),
    })),
    {
      name: "format",
      label: t("hooks.field.format"),
      type: "select",
      value: hook ? hook.format : "orderchat",
      options: FORMATS.map((f) => ({ value: f, label: formatLabel(f) })),
    },
    {
      name: "secret",
      label: t("hooks.field.secret"),
      maxlength: 128,
      hint: t(editing ? "hooks.field.secretKeep" : "hooks.field.secretHint"),
      // DingTalk signs with the robot's own secret; the others take the server's.
      showIf: (v) => v.format === "dingtalk",
    },
    {
      name: "language",
      label: t("hooks.field.language"),
      type: "select",
      value: hook ? hook.language : "zh-CN",
      options: LANGUAGES.map((l) => ({ value: l, label: t(`hooks.language.${l}`) })),
    },
    {
      name: "description",
      label: t("hooks.field.description"),
      maxlength: 200,
      value: hook ? hook.description : "",
      hint: t("hooks.field.descriptionHint"),
    },
    editing ? { name: "enabled", label: t("hooks.field.enabled"), type: "checkbox", value: hook.enabled } : null,
  ].filter(Boolean);
}

/**
 * The request body from a form's values; throws a message for the dialog when no
 * topic is ticked.
 */
function hookBody(values, enabled) {
  const topics = TOPICS.filter((topic) => values[topicField(topic)]);
  if (topics.length === 0) {
    const err = new Error("no topic");
    err.userMessage = t("hooks.topicsRequired");
    throw err;
  }
  const body = {
    url: values.url,
    topics,
    format: values.format,
    language: values.language,
    description: values.description || "",
    enabled: values.enabled === undefined ? enabled : values.enabled,
  };
  if (values.secret) body.secret = values.secret;
  return body;
}

/** The body that changes only what `changes` names: PUT replaces the whole endpoint. */
function sameHook(hook, changes) {
  const { url, topics, format, language, description, enabled } = hook;
  return { url, topics, format, language, description, enabled, ...changes };
}

/** Show a new endpoint's secret once, with a copy button: the server never shows it again. */
function showSecret(hook) {
  const field = h("input", {
    class: "admin-link",
    testid: "hook-secret",
    readonly: true,
    value: hook.secret,
    "aria-label": t("hooks.secretTitle"),
  });
  const copy = h("button", { type: "button", class: "btn btn-primary", testid: "hook-copy" }, t("hooks.copy"));
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(hook.secret);
      copy.textContent = t("hooks.copied");
    } catch {
      field.select();
      toast(t("hooks.copyFailed"), "error");
    }
  });
  field.addEventListener("focus", () => field.select());
  infoDialog(t("hooks.secretTitle"), [
    h("p", { class: "hook-once", testid: "hook-secret-note", role: "note" }, t("hooks.secretOnce")),
    h("div", { class: "admin-link-row" }, field, copy),
    hook.format === "orderchat" ? h("p", { class: "hint" }, t("hooks.secretUse")) : null,
  ]);
}

export class WebhooksView {
  constructor() {
    this.hooks = [];
    this.log = null;
    this.status = h("p", { class: "admin-status", role: "status" }, t("hooks.loading"));
    this.table = h("div", { class: "hooks-list" });
    this.logBox = h("div", { class: "hooks-log-box" });
    this.el = h(
      "div",
      { class: "hooks", testid: "hooks" },
      h("p", { class: "hooks-intro" }, t("hooks.intro")),
      this.status,
      this.table,
      this.logBox,
    );
  }

  async load() {
    try {
      const answer = await api("/api/admin/webhooks");
      this.hooks = answer.webhooks || [];
      this.status.hidden = true;
      this.render();
    } catch (err) {
      this.status.hidden = false;
      this.status.textContent = t("hooks.loadFailed", { message: errorText(err) });
    }
  }

  destroy() {
    this.closeLog();
  }

  render() {
    if (this.hooks.length === 0) {
      clear(this.table).append(h("p", { class: "admin-status", testid: "hooks-none" }, t("hooks.none")));
      return;
    }
    const head = h(
      "tr",
      ["url", "topics", "format", "state", "actions"].map((c) => h("th", { scope: "col" }, t(`hooks.col.${c}`))),
    );
    clear(this.table).append(
      h(
        "table",
        { class: "admin-table hooks-table", testid: "hooks-table" },
        h("thead", head),
        h(
          "tbody",
          this.hooks.map((hook) => this.row(hook)),
        ),
      ),
    );
  }

  row(hook) {
    const act = (key, fn, cls = "btn btn-small") =>
      h(
        "button",
        { type: "button", class: cls, testid: `hook-${key}`, on: { click: () => fn(hook) } },
        t(`hooks.${key}`),
      );
    return h(
      "tr",
      { testid: "hook-row", dataset: { id: hook.id, enabled: String(hook.enabled) } },
      h(
        "td",
        h("code", { class: "hook-url", testid: "hook-url" }, hook.url),
        hook.description ? h("span", { class: "admin-seen" }, hook.description) : null,
      ),
      h(
        "td",
        h(
          "div",
          { class: "admin-roles", testid: "hook-topics" },
          hook.topics.map((topic) => h("span", { class: "admin-role", dataset: { topic } }, topicLabel(topic))),
        ),
      ),
      h(
        "td",
        h("span", { testid: "hook-format" }, formatLabel(hook.format)),
        h("span", { class: "admin-seen" }, t(`hooks.language.${hook.language}`)),
      ),
      h(
        "td",
        h(
          "span",
          { class: hook.enabled ? "admin-state on" : "admin-state off", testid: "hook-state" },
          t(hook.enabled ? "hooks.enabled" : "hooks.disabled"),
        ),
      ),
      h(
        "td",
        h(
          "div",
          { class: "admin-row-actions" },
          act("log", (hk) => this.openLog(hk)),
          act("edit", (hk) => this.edit(hk)),
          hook.enabled
            ? act("disable", (hk) => this.setEnabled(hk, false))
            : act("enable", (hk) => this.setEnabled(hk, true)),
          act("delete", (hk) => this.remove(hk), "btn btn-small btn-danger-outline"),
        ),
      ),
    );
  }

  async add() {
    const added = await formDialog({
      title: t("hooks.addTitle"),
      fields: hookFields(null),
      submitLabel: t("hooks.add"),
      onSubmit: async (v) => api("/api/admin/webhooks", { method: "POST", body: hookBody(v, true) }),
    });
    if (!added) return;
    showSecret(added);
    await this.load();
  }

  async edit(hook) {
    const saved = await formDialog({
      title: t("hooks.editTitle"),
      fields: hookFields(hook),
      onSubmit: async (v) => api(hookPath(hook), { method: "PUT", body: hookBody(v, hook.enabled) }),
    });
    if (!saved) return;
    toast(t("hooks.saved"));
    await this.load();
  }

  async setEnabled(hook, enabled) {
    try {
      await api(hookPath(hook), { method: "PUT", body: sameHook(hook, { enabled }) });
    } catch (err) {
      toast(t("hooks.failed", { message: errorText(err) }), "error");
    }
    await this.load();
  }

  async remove(hook) {
    const ok = await confirmDialog(t("hooks.deleteTitle"), t("hooks.deleteText", { url: hook.url }));
    if (!ok) return;
    try {
      await api(hookPath(hook), { method: "DELETE" });
      toast(t("hooks.deleted"));
      if (this.log && this.log.hook.id === hook.id) this.closeLog();
    } catch (err) {
      toast(t("hooks.failed", { message: errorText(err) }), "error");
    }
    await this.load();
  }

  openLog(hook) {
    this.closeLog();
    this.log = new DeliveryLog(hook, () => this.closeLog());
    this.logBox.append(this.log.el);
    this.log.el.scrollIntoView({ block: "nearest" });
  }

  closeLog() {
    if (!this.log) return;
    this.log.destroy();
    this.log = null;
  }
}

/** One endpoint's deliveries: the newest page kept fresh while open, older pages on request. */
class DeliveryLog {
  constructor(hook, onClose) {
    this.hook = hook;
    this.rows = [];
    this.more = false;
    this.paged = false;
    this.timer = null;
    this.closed = false;
    // Each request's number: an answer overtaken by a later request is dropped.
    this.asked = 0;
    this.expanded = new Set();
    this.list = h("ol", { class: "hook-deliveries", testid: "hook-deliveries" });
    this.status = h("p", { class: "admin-status", role: "status", testid: "hook-log-status" });
    this.older = h(
      "button",
      { type: "button", class: "btn btn-small", testid: "hook-log-older", hidden: true },
      t("hooks.logOlder"),
    );
    this.older.addEventListener("click", () => this.loadOlder());
    const button = (key, testid, fn) =>
      h("button", { type: "button", class: "btn btn-small", testid, on: { click: fn } }, t(key));
    this.el = h(
      "section",
      { class: "hook-log", testid: "hook-log-panel", dataset: { id: hook.id }, "aria-labelledby": "hook-log-title" },
      h(
        "header",
        { class: "hook-log-head" },
        h("h2", { class: "hook-log-title", id: "hook-log-title" }, t("hooks.logTitle")),
        h("code", { class: "hook-url" }, t("hooks.logFor", { url: hook.url })),
        h(
          "div",
          { class: "admin-actions" },
          button("hooks.logRefresh", "hook-log-refresh", () => this.refresh()),
          button("hooks.logClose", "hook-log-close", onClose),
        ),
      ),
      h("p", { class: "hint" }, t("hooks.logAuto", { seconds: LOG_REFRESH_S })),
      this.list,
      this.status,
      this.older,
    );
    this.refresh();
  }

  destroy() {
    this.closed = true;
    clearTimeout(this.timer);
    this.el.remove();
  }

  /** The newest page again; automatic only while no older page is shown (it would be lost). */
  async refresh() {
    clearTimeout(this.timer);
    this.paged = false;
    const asked = ++this.asked;
    try {
      const answer = await api(`${hookPath(this.hook)}/deliveries?limit=${LOG_PAGE}`);
      if (this.closed || asked !== this.asked) return;
      this.rows = answer.deliveries || [];
      this.more = this.rows.length === LOG_PAGE;
      this.draw();
    } catch (err) {
      if (asked !== this.asked) return;
      this.status.textContent = t("hooks.logFailed", { message: errorText(err) });
    }
    this.schedule();
  }

  schedule() {
    clearTimeout(this.timer);
    if (this.paged || this.closed) return;
    this.timer = setTimeout(() => this.refresh(), LOG_REFRESH_S * 1000);
  }

  async loadOlder() {
    if (this.rows.length === 0) return;
    clearTimeout(this.timer);
    this.paged = true;
    this.older.disabled = true;
    const asked = ++this.asked;
    try {
      const { fresh, more } = await this.pageBefore();
      if (this.closed || asked !== this.asked) return;
      this.rows = this.rows.concat(fresh);
      this.more = more;
      this.draw();
    } catch (err) {
      this.status.textContent = t("hooks.logFailed", { message: errorText(err) });
    } finally {
      this.older.disabled = false;
    }
  }

  /**
   * The page before the oldest shown. `before` is exclusive and deliveries planned
   * together share their time, so it asks from that time inclusive, for as many more
   * as are shown at it, and drops those it has; a tie larger than the server's page
   * is stepped over rather than asked for forever.
   */
  async pageBefore() {
    const oldest = this.rows[this.rows.length - 1].created_ts;
    const tied = this.rows.filter((r) => r.created_ts === oldest).length;
    const known = new Set(this.rows.map((r) => r.id));
    const page = async (before, limit) => {
      const answer = await api(`${hookPath(this.hook)}/deliveries?limit=${limit}&before=${before}`);
      const found = answer.deliveries || [];
      return { fresh: found.filter((r) => !known.has(r.id)), more: found.length === limit };
    };
    const limit = Math.min(LOG_MAX, LOG_PAGE + tied);
    const got = await page(oldest + 1, limit);
    if (got.fresh.length === 0 && got.more) return page(oldest, LOG_PAGE);
    return got;
  }

  draw() {
    clear(this.list).append(...this.rows.map((row) => this.entry(row)));
    if (this.rows.length === 0) this.status.textContent = t("hooks.logEmpty");
    else this.status.textContent = this.more ? "" : t("hooks.logEnd");
    this.older.hidden = !this.more;
  }

  entry(row) {
    // "Waiting" before the first try, "retrying" after a failed one.
    const label = row.state === "pending" && row.attempts === 0 ? "waiting" : row.state;
    const times = [
      t("hooks.created", { when: fmtDateTime(row.created_ts) }),
      row.next_try_ts ? t("hooks.nextTry", { when: fmtDateTime(row.next_try_ts) }) : null,
      row.done_ts ? t("hooks.done", { when: fmtDateTime(row.done_ts) }) : null,
    ].filter(Boolean);
    return h(
      "li",
      { class: `hook-delivery state-${row.state}`, testid: "hook-delivery", dataset: { id: row.id, state: row.state } },
      h(
        "div",
        { class: "hook-delivery-head" },
        h("span", { class: `state-chip state-${row.state}`, testid: "hook-delivery-state" }, t(`hooks.state.${label}`)),
        h("span", { class: "hook-topic" }, topicLabel(row.topic)),
        h("span", { class: "admin-seen hook-attempts" }, t("hooks.attempts", { count: row.attempts })),
      ),
      h("div", { class: "admin-seen hook-times" }, times.join(" · ")),
      row.outcome ? h("p", { class: "hook-outcome", testid: "hook-delivery-outcome" }, row.outcome) : null,
      row.payload ? this.payload(row) : null,
    );
  }

  /** The event as sent, folded; kept open across refreshes. */
  payload(row) {
    const details = h(
      "details",
      { class: "hook-payload", open: this.expanded.has(row.id) },
      h("summary", { testid: "hook-delivery-payload" }, t("hooks.payload")),
      h("pre", { class: "hook-payload-text" }, pretty(row.payload)),
    );
    details.addEventListener("toggle", () => {
      if (details.open) this.expanded.add(row.id);
      else this.expanded.delete(row.id);
    });
    return details;
  }
}

function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
