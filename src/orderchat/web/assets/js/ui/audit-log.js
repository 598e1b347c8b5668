/**
 * The admin console's audit log (`#/admin/audit`): sensitive actions newest first
 * (`GET /api/admin/audit`, docs/http-api.md), filtered by text, kind of action and
 * dates, a page at a time, and exported as CSV with the same filters
 * (`GET /api/admin/audit.csv`). Each entry's details are worded for people; anything
 * this page does not know is shown as it came, key by key, never as markup.
 */

import { h, clear } from "../dom.js";
import { t, tOr } from "../i18n.js";
import { api, errorFromBody, errorText, languageHeaders } from "../api.js";
import { getSession } from "../session.js";
import { fmtDateTime } from "../format.js";
import { icon } from "./icons.js";
import { roleLabel, toast } from "./util.js";
import "./strings-evidence.js";

export const AUDIT_FAMILIES = [
  "staff",
  "conversation",
  "order",
  "message",
  "webhook",
  "search",
  "retention",
  "visitor",
  "audit",
];
const PAGE = 50;
const TYPE_PAUSE_MS = 300;

/** Local midnight of a `YYYY-MM-DD` date input's value, `days` later; null when empty. */
function dayStart(value, days = 0) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value || "");
  if (!m) return null;
  return new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + days).getTime();
}

/** An action's name in the reader's language, or the action itself when it is newer than this page. */
export function actionLabel(action) {
  return tOr(`audit.action.${action}`, action);
}

function isNum(v) {
  return typeof v === "number" && Number.isFinite(v);
}

/** A value from the details, as short text. */
function plain(value) {
  if (value === null || value === undefined) return "—";
  if (Array.isArray(value)) return value.map(plain).join(", ");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function daysText(days) {
  return isNum(days) ? t("ret.nDays", { days }) : t("ret.forever");
}

/**
 * The details of an entry as one readable line: what each kind of action records,
 * worded, and whatever else it carries as `key: value`.
 * @param {{action: string, details?: object}} entry
 * @param {(id: string) => string} nameOf a person's name from their id
 * @returns {string}
 */
export function summarise(entry, nameOf) {
  const d = entry.details && typeof entry.details === "object" ? entry.details : {};
  const used = new Set();
  const take = (key) => {
    used.add(key);
    return d[key];
  };
  const has = (key) => d[key] !== undefined && d[key] !== null;
  const roles = (list) => (Array.isArray(list) ? list.map(roleLabel).join(" / ") : plain(list));
  const people = (list) => (Array.isArray(list) ? list.map((id) => nameOf(String(id))).join(t("audit.d.sep")) : "");
  const parts = [];
  const family = entry.action.split(".")[0];
  switch (entry.action) {
    case "message.recalled":
      if (has("seq")) parts.push(t("audit.d.message", { seq: take("seq") }));
      if (has("kind")) parts.push(tOr(`search.kind.${d.kind}`, take("kind")));
      if (has("sender")) parts.push(t("audit.d.sender", { name: nameOf(String(take("sender"))) }));
      break;
    case "order.exported":
      used.add("number");
      if (isNum(d.files)) parts.push(t("audit.d.files", { count: take("files") }));
      if (isNum(d.links)) parts.push(t("audit.d.links", { count: take("links") }));
      if (isNum(d.withheld) && d.withheld > 0) parts.push(t("audit.d.withheld", { count: take("withheld") }));
      used.add("withheld");
      used.add("head");
      break;
    case "search.audit":
      if (has("query")) parts.push(t("audit.d.query", { query: take("query") }));
      if (isNum(d.results)) parts.push(t("audit.d.results", { count: take("results") }));
      if (has("conv")) parts.push(t("audit.d.inConv", { conv: take("conv") }));
      used.add("conv");
      break;
    case "audit.exported": {
      const filter = [take("text"), ...(Array.isArray(take("actions")) ? d.actions.map(actionLabel) : [])].filter(
        Boolean,
      );
      parts.push(filter.length ? t("audit.d.filter", { filter: filter.join(" · ") }) : t("audit.d.noFilter"));
      break;
    }
    case "staff.roles_changed":
      used.add("username");
      if (has("before") || has("after"))
        parts.push(t("audit.d.change", { before: roles(take("before")), after: roles(take("after")) }));
      break;
    case "staff.added":
    case "staff.invited":
    case "staff.password_reset_issued":
      used.add("username");
      if (Array.isArray(d.roles) && d.roles.length) parts.push(roles(take("roles")));
      used.add("roles");
      used.add("link");
      break;
    case "staff.disabled":
    case "staff.enabled":
    case "staff.signed_out":
      used.add("username");
      if (isNum(d.sessions_ended)) parts.push(t("audit.d.sessions", { count: take("sessions_ended") }));
      break;
    case "conversation.members_added":
      if (Array.isArray(d.users)) parts.push(people(take("users")));
      break;
    case "conversation.member_removed":
      if (has("user")) parts.push(nameOf(String(take("user"))));
      break;
    case "order.customer_invited":
      used.add("number");
      if (isNum(d.expires)) parts.push(t("audit.d.expires", { when: fmtDateTime(take("expires")) }));
      used.add("customer");
      break;
    case "order.legal_hold_changed":
      used.add("number");
      if (typeof d.hold === "boolean") parts.push(t(take("hold") ? "audit.d.holdOn" : "audit.d.holdOff"));
      break;
    case "retention.changed": {
      used.add("kind");
      const after = "after" in d ? take("after") : take("days");
      used.add("days");
      if ("before" in d) parts.push(t("audit.d.change", { before: daysText(take("before")), after: daysText(after) }));
      else parts.push(daysText(after));
      break;
    }
    case "retention.purged":
      if (isNum(d.conversations)) parts.push(t("audit.d.convs", { count: take("conversations") }));
      if (isNum(d.first_seq) && isNum(d.last_seq))
        parts.push(t("audit.d.seqs", { first: take("first_seq"), last: take("last_seq") }));
      if (isNum(d.messages) || isNum(d.files))
        parts.push(t("audit.d.purged", { messages: take("messages") ?? 0, files: take("files") ?? 0 }));
      break;
    case "visitor.erased":
      if (isNum(d.messages) || isNum(d.files))
        parts.push(t("audit.d.purged", { messages: take("messages") ?? 0, files: take("files") ?? 0 }));
      break;
    default:
      if (family === "webhook") {
        used.add("url");
        if (Array.isArray(d.topics)) parts.push(take("topics").join(" "));
        if (has("format")) parts.push(take("format"));
        if (d.enabled === false) parts.push(t("audit.d.disabled"));
        used.add("enabled");
        if (take("secret_changed")) parts.push(t("audit.d.secret"));
      }
  }
  for (const [key, value] of Object.entries(d)) {
    if (used.has(key) || value === null || value === undefined || value === "") continue;
    parts.push(`${key}: ${plain(value)}`);
  }
  return parts.join(t("audit.d.sep"));
}

/**
 * What an entry was done to, for people: a person's name (with their username), an
 * order's number, an endpoint's address, else the id as stored.
 * @param {{action: string, target?: string, details?: object}} entry
 * @param {(id: string) => string|null} knownName
 * @returns {{main: string, sub: string|null}}
 */
export function targetText(entry, knownName) {
  const d = entry.details && typeof entry.details === "object" ? entry.details : {};
  const id = entry.target ? String(entry.target) : "";
  const family = entry.action.split(".")[0];
  const name = id ? knownName(id) : null;
  if (family === "staff") {
    const username = typeof d.username === "string" ? d.username : null;
    if (name) return { main: name, sub: username && username !== name ? username : null };
    return { main: username || id, sub: null };
  }
  if (family === "order" && d.number) return { main: t("audit.d.order", { number: String(d.number) }), sub: null };
  if (family === "webhook" && typeof d.url === "string") return { main: d.url, sub: null };
  if (entry.action === "retention.changed") {
    const kind = typeof d.kind === "string" ? d.kind : id;
    return { main: tOr(`ret.kind.${kind}`, kind), sub: null };
  }
  if (["search.audit", "audit.exported", "retention.purged"].includes(entry.action)) return { main: "", sub: null };
  return { main: name || id, sub: null };
}

/**
 * Download an admin CSV (`path` with its query) with the session's bearer token: the
 * route is not under the media cookie's path, so a plain link would not be signed in.
 * @param {string} path
 * @param {string} filename
 */
export async function downloadWithAuth(path, filename) {
  const session = getSession();
  const headers = { Accept: "text/csv", ...languageHeaders() };
  if (session) headers.Authorization = `Bearer ${session.token}`;
  const response = await fetch(path, { headers, credentials: "same-origin" });
  if (!response.ok) {
    const text = await response.text();
    throw errorFromBody(response.status, text, response.headers.get("Retry-After"));
  }
  const url = URL.createObjectURL(await response.blob());
  const link = h("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function today() {
  const d = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}${pad(d.getMonth() + 1)}${pad(d.getDate())}`;
}

export class AuditView {
  constructor() {
    this.entries = [];
    this.next = null;
    this.loading = null; // "first" | "more" | null
    this.error = null;
    this.asked = 0;
    this.timer = 0;
    this.names = new Map();
    this.filters = { q: "", family: "", from: "", to: "" };

    this.q = h("input", {
      type: "search",
      class: "audit-q",
      testid: "audit-q",
      maxlength: 100,
      placeholder: t("audit.qPlaceholder"),
      "aria-label": t("audit.q"),
    });
    this.q.addEventListener("input", () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.apply(), TYPE_PAUSE_MS);
    });
    this.q.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.isComposing) {
        event.preventDefault();
        this.apply();
      }
    });
    this.family = h(
      "select",
      { testid: "audit-family", "aria-label": t("audit.family"), on: { change: () => this.apply() } },
      h("option", { value: "" }, t("audit.family.all")),
      AUDIT_FAMILIES.map((f) => h("option", { value: f }, t(`audit.family.${f}`))),
    );
    const date = (testid, key) => {
      const input = h("input", { type: "date", testid, on: { change: () => this.apply() } });
      return [input, h("label", { class: "audit-date" }, h("span", t(key)), input)];
    };
    const [from, fromLabel] = date("audit-from", "audit.from");
    const [to, toLabel] = date("audit-to", "audit.to");
    this.from = from;
    this.to = to;
    this.exportLabel = h("span", t("audit.export"));
    this.exportBtn = h(
      "button",
      { type: "button", class: "btn btn-small", testid: "audit-export", on: { click: () => this.exportCsv() } },
      icon("download"),
      this.exportLabel,
    );
    this.status = h("p", { class: "admin-status", role: "status", testid: "audit-status" }, t("audit.loading"));
    this.body = h("tbody");
    this.table = h(
      "table",
      { class: "admin-table audit-table", testid: "audit-table", hidden: true },
      h(
        "thead",
        h(
          "tr",
          ["time", "actor", "action", "target", "details"].map((c) => h("th", { scope: "col" }, t(`audit.col.${c}`))),
        ),
      ),
      this.body,
    );
    this.more = h("button", {
      type: "button",
      class: "btn btn-small audit-more",
      testid: "audit-more",
      hidden: true,
      on: { click: () => this.fetch(true) },
    });
    this.el = h(
      "div",
      { class: "audit", testid: "audit" },
      h("p", { class: "hooks-intro" }, t("audit.intro")),
      h(
        "div",
        { class: "audit-filters", role: "search", testid: "audit-filters" },
        h("label", { class: "audit-text" }, h("span", t("audit.q")), this.q),
        h("label", { class: "audit-date" }, h("span", t("audit.family")), this.family),
        fromLabel,
        toLabel,
        h("div", { class: "audit-export" }, this.exportBtn),
      ),
      this.table,
      this.status,
      this.more,
    );
  }

  async load() {
    await Promise.all([this.loadNames(), this.fetch(false)]);
  }

  destroy() {
    clearTimeout(this.timer);
    this.asked += 1;
  }

  /** Staff names for the ids entries carry; an entry about someone else shows their id. */
  async loadNames() {
    try {
      const answer = await api("/api/admin/staff");
      for (const p of (answer && answer.staff) || []) this.names.set(p.id, p.display_name || p.username);
      if (this.entries.length) this.draw(true);
    } catch {
      // The entries still show, with ids where names would be.
    }
  }

  nameOf(id) {
    return this.names.get(id) || id;
  }

  apply() {
    this.readFilters();
    this.fetch(false);
  }

  readFilters() {
    clearTimeout(this.timer);
    this.filters = {
      q: this.q.value.trim(),
      family: this.family.value,
      from: this.from.value || "",
      to: this.to.value || "",
    };
  }

  /** The query the filters make, without paging: the list and the CSV share it. */
  params() {
    const f = this.filters;
    const params = new URLSearchParams();
    if (f.q) params.set("q", f.q);
    if (f.family) params.append("action", `${f.family}.*`);
    const since = dayStart(f.from);
    const until = dayStart(f.to, 1);
    if (since !== null) params.set("since", String(since));
    if (until !== null) params.set("until", String(until - 1));
    return params;
  }

  badRange() {
    const since = dayStart(this.filters.from);
    const until = dayStart(this.filters.to, 1);
    return since !== null && until !== null && since >= until;
  }

  async fetch(more) {
    if (more && !this.next) return;
    const asked = ++this.asked;
    if (this.badRange()) {
      this.entries = [];
      this.next = null;
      this.error = t("audit.badRange");
      this.loading = null;
      this.draw(true);
      return;
    }
    this.loading = more ? "more" : "first";
    this.error = null;
    this.drawStatus();
    const params = this.params();
    params.set("limit", String(PAGE));
    if (more) params.set("cursor", String(this.next));
    try {
      const answer = await api(`/api/admin/audit?${params}`);
      if (asked !== this.asked) return;
      const page = (answer && Array.isArray(answer.entries) ? answer.entries : []).filter((e) => e && e.action);
      this.entries = more ? this.entries.concat(page) : page;
      this.next = answer && answer.next ? answer.next : null;
      this.loading = null;
      if (more) {
        this.body.append(...page.map((e) => this.row(e)));
        this.drawStatus();
      } else this.draw(true);
    } catch (err) {
      if (asked !== this.asked) return;
      this.loading = null;
      this.error = t("audit.loadFailed", { message: errorText(err) });
      if (!more) this.entries = [];
      this.draw(!more);
    }
  }

  draw(rows) {
    if (rows) clear(this.body).append(...this.entries.map((e) => this.row(e)));
    this.drawStatus();
  }

  drawStatus() {
    this.table.hidden = this.entries.length === 0;
    let text = "";
    if (this.error) text = this.error;
    else if (this.loading === "first") text = t("audit.loading");
    else if (!this.loading && this.entries.length === 0) text = t("audit.none");
    else if (!this.loading && !this.next) text = t("audit.end");
    this.status.textContent = text;
    this.status.hidden = !text;
    this.status.setAttribute("role", this.error ? "alert" : "status");
    this.more.hidden = !this.next || Boolean(this.error) || this.loading === "first";
    this.more.disabled = this.loading === "more";
    this.more.textContent = this.loading === "more" ? t("audit.loadingMore") : t("audit.more");
  }

  row(entry) {
    const actor = entry.actor ? entry.actor_name || this.nameOf(entry.actor) : t("audit.server");
    const details = summarise(entry, (id) => this.nameOf(id));
    const target = targetText(entry, (id) => this.names.get(id) || null);
    return h(
      "tr",
      { class: "audit-row", testid: "audit-row", dataset: { id: entry.id, action: entry.action } },
      h(
        "td",
        { class: "audit-when" },
        h("time", { datetime: new Date(entry.ts).toISOString() }, fmtDateTime(entry.ts)),
      ),
      h("td", { class: "audit-actor", testid: "audit-actor" }, actor),
      h(
        "td",
        h(
          "span",
          { class: `audit-action fam-${entry.action.split(".")[0]}`, testid: "audit-action", title: entry.action },
          actionLabel(entry.action),
        ),
      ),
      h(
        "td",
        { class: "audit-target" },
        target.main
          ? h("span", { class: "audit-target-main", testid: "audit-target", title: String(entry.target) }, target.main)
          : null,
        target.sub ? h("code", { class: "admin-seen" }, target.sub) : null,
        entry.conv && entry.conv !== entry.target ? h("code", { class: "admin-seen" }, entry.conv) : null,
      ),
      h("td", { class: "audit-details", testid: "audit-details" }, details),
    );
  }

  async exportCsv() {
    this.readFilters();
    if (this.badRange()) {
      toast(t("audit.badRange"), "error");
      return;
    }
    this.exportBtn.disabled = true;
    this.exportLabel.textContent = t("audit.exporting");
    try {
      await downloadWithAuth(`/api/admin/audit.csv?${this.params()}`, `audit-log-${today()}.csv`);
      toast(t("audit.exported"));
    } catch (err) {
      toast(t("audit.exportFailed", { message: errorText(err) }), "error");
    } finally {
      this.exportBtn.disabled = false;
      this.exportLabel.textContent = t("audit.export");
    }
  }
}
