/**
 * The staff's consults inbox (docs/consults.md §3): unassigned, mine, my roles' and
 * (admins) all, waiting longest first, with counts. `GET /api/consults?view=…` loads
 * it; the `system` messages whose `meta.event` starts with `consult_` keep it current,
 * and so do the visitor's and staff's own messages in a consult (who waits since when).
 *
 * It also holds what the rest of the staff side says about a consult (its status,
 * where it came from, how long the visitor has waited), so the panel and the list
 * word it the same way.
 */

import { h, clear } from "../dom.js";
import { t, tOr } from "../i18n.js";
import { api, errorText } from "../api.js";
import { icon } from "./icons.js";
import { avatar, isAdmin, onLang } from "./util.js";
import "./strings-consults.js";

const VIEWS = ["unassigned", "mine", "role", "all"];
const TICK_MS = 30 * 1000;
const PAGE = 200;

// ---- what a consult says, shared with the panel ---------------------------------

/**
 * The consult a live frame carries: a `system` message of a `consult_*` event. The
 * message holds a brief of it (`{id, status, assignee, assignee_name, order}`, the ids
 * alone); this returns it in the shape the API shows a consult, merged into `known`.
 * @param {object} frame
 * @param {object|null} [known] the consult as known before
 * @returns {object|null}
 */
export function consultOfFrame(frame, known = null) {
  if (!frame || frame.op !== "message" || frame.kind !== "system") return null;
  const meta = frame.meta || {};
  if (typeof meta.event !== "string" || !meta.event.startsWith("consult_")) return null;
  const brief = meta.consult;
  if (!brief || typeof brief !== "object" || !brief.id) return null;
  const consult = { ...(known || {}), id: brief.id };
  if (brief.status) consult.status = brief.status;
  if ("assignee" in brief) {
    const a = brief.assignee;
    consult.assignee =
      a && typeof a === "object"
        ? a
        : a
          ? {
              id: a,
              display_name: brief.assignee_name || (known && known.assignee && known.assignee.display_name) || "",
            }
          : null;
  }
  if ("order" in brief) {
    const o = brief.order;
    const number = known && known.order && known.order.number;
    consult.order = o && typeof o === "object" ? o : o ? { id: o, number: number || null } : null;
  }
  if (consult.status === "closed" && !consult.closed_ts) consult.closed_ts = frame.ts || Date.now();
  if (consult.status !== "closed") consult.closed_ts = null;
  if (consult.status !== "queued") consult.position = null;
  if (!consult.created_ts) consult.created_ts = frame.ts || Date.now();
  return consult;
}

/**
 * The consult event a message is, if any (`consult_assigned`, …).
 * @param {object} message
 * @returns {string|null}
 */
export function consultEvent(message) {
  const e = message && message.kind === "system" && message.meta && message.meta.event;
  return typeof e === "string" && e.startsWith("consult_") ? e : null;
}

/**
 * The conversation of a consult (a consult is its conversation: the same id).
 * @param {object} consult
 * @returns {string}
 */
export function convOf(consult) {
  return consult.conv || consult.conv_id || consult.id;
}

/** The visitor's name, or a word for one who gave none (or was erased). */
export function visitorName(consult) {
  const v = consult && consult.visitor;
  return (v && v.display_name) || t("cs.visitorFallback");
}

/**
 * A length of time, roughly, as a person says it: "45 秒", "3 分钟", "1 小时 5 分".
 * @param {number} ms
 * @returns {string}
 */
export function durationText(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return t("cs.dur.seconds", { n: s });
  const m = Math.floor(s / 60);
  if (m < 60) return t("cs.dur.minutes", { n: m });
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return t("cs.dur.hours", { h: hrs, m: m % 60 });
  return t("cs.dur.days", { n: Math.floor(hrs / 24) });
}

/** @returns {HTMLElement} the consult's status as a chip */
export function statusChip(consult, testid = "consult-status") {
  const status = consult.status || "open";
  return h(
    "span",
    { class: "status-chip cs-status", testid, dataset: { status: `consult-${status}` } },
    tOr(`cs.status.${status}`, status),
  );
}

/** "网站插件 · 标签 counter", the way in, in words. */
export function sourceText(consult) {
  const parts = [];
  if (consult.source) parts.push(tOr(`cs.source.${consult.source}`, consult.source));
  if (consult.tag) parts.push(t("cs.tagIs", { tag: consult.tag }));
  return parts.join(" · ");
}

/** A page address shortened for a row: its host and path, without the scheme. */
export function shortUrl(url) {
  try {
    const u = new URL(url);
    return `${u.host}${u.pathname === "/" ? "" : u.pathname}`;
  } catch {
    return String(url || "");
  }
}

/** Whether a page address may be a link (only http and https ever are). */
export function safeUrl(url) {
  try {
    const u = new URL(url);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch {
    return null;
  }
}

/** When the visitor started waiting for the answer they still wait on (null: answered). */
function waitingSince(c) {
  return typeof c.waiting_since_ts === "number" ? c.waiting_since_ts : null;
}

/** Waiting longest first; the answered ones after, oldest first; closed ones last. */
function compare(a, b) {
  const closedA = a.status === "closed";
  const closedB = b.status === "closed";
  if (closedA !== closedB) return closedA ? 1 : -1;
  if (closedA) return (b.closed_ts || 0) - (a.closed_ts || 0);
  const wa = waitingSince(a);
  const wb = waitingSince(b);
  if ((wa === null) !== (wb === null)) return wa === null ? 1 : -1;
  if (wa !== null && wa !== wb) return wa - wb;
  return (a.created_ts || 0) - (b.created_ts || 0);
}

export class ConsultInbox {
  /**
   * @param {{me: object, onOpen: (convId: string, consult: object) => void,
   *          onChange?: (inbox: ConsultInbox) => void}} options
   *   `onChange` hears every change (counts for a badge, consults for the list and panel).
   */
  constructor({ me, onOpen, onChange }) {
    this.me = me;
    this.admin = isAdmin(me);
    this.onOpen = onOpen;
    this.onChange = onChange || null;
    this.views = this.admin ? VIEWS : VIEWS.filter((v) => v !== "all");
    this.view = "unassigned";
    this.consults = new Map();
    this.withClosed = false;
    this.query = "";
    this.active = null;
    this.loaded = false;
    this.error = null;
    this.tabs = h("div", { class: "cs-views", role: "tablist", "aria-label": t("cs.views") });
    this.closedBox = h("input", { type: "checkbox", testid: "inbox-closed" });
    this.closedBox.addEventListener("change", () => {
      this.withClosed = this.closedBox.checked;
      if (this.withClosed) this.load();
      else this.render();
    });
    this.closedLabel = h("span", null, t("cs.showClosed"));
    this.list = h("ul", { class: "cs-list", testid: "inbox-list", role: "list" });
    this.empty = h("p", { class: "cs-empty", testid: "inbox-empty", hidden: true });
    this.el = h(
      "div",
      { class: "cs-inbox", testid: "inbox", "aria-label": t("cs.inbox"), hidden: true },
      this.tabs,
      h("label", { class: "cs-closed" }, this.closedBox, this.closedLabel),
      this.list,
      this.empty,
    );
    this.timer = setInterval(() => {
      if (!this.el.hidden) this.render();
    }, TICK_MS);
    this.offLang = onLang(() => {
      this.el.setAttribute("aria-label", t("cs.inbox"));
      this.tabs.setAttribute("aria-label", t("cs.views"));
      this.closedLabel.textContent = t("cs.showClosed");
      this.render();
    });
    this.render();
  }

  destroy() {
    clearInterval(this.timer);
    this.offLang();
  }

  /** Load every view this user has (each is one page, the longest waits first). */
  async load() {
    const statuses = this.withClosed ? [null, "closed"] : [null];
    const asks = [];
    for (const view of this.views)
      for (const status of statuses) {
        const params = new URLSearchParams({ view, limit: String(PAGE) });
        if (status) params.set("status", status);
        asks.push(api(`/api/consults?${params}`));
      }
    const answers = await Promise.allSettled(asks);
    const failed = answers.find((a) => a.status === "rejected");
    const fresh = new Map();
    for (const a of answers)
      if (a.status === "fulfilled" && a.value) for (const c of a.value.consults || []) fresh.set(c.id, c);
    if (failed && !answers.some((a) => a.status === "fulfilled")) {
      this.error = errorText(failed.reason);
    } else {
      this.error = null;
      this.consults = fresh;
      // The first time, show where the work is: one's own consults when none waits unassigned.
      if (!this.loaded && !this.chosen && this.count("unassigned") === 0 && this.count("mine") > 0) this.view = "mine";
      this.loaded = true;
    }
    this.render();
    this.changed();
  }

  /**
   * Take a consult as the server sent it (an event's `meta.consult`, an action's answer).
   * @param {object} consult
   */
  upsert(consult) {
    if (!consult || !consult.id) return;
    const prev = this.consults.get(consult.id);
    this.consults.set(consult.id, prev ? { ...prev, ...consult } : consult);
    this.render();
    this.changed();
  }

  /**
   * @param {string} convId
   * @returns {object|null} the consult of a conversation, when this inbox knows it
   */
  byConv(convId) {
    const direct = this.consults.get(convId);
    if (direct) return direct;
    for (const c of this.consults.values()) if (convOf(c) === convId) return c;
    return null;
  }

  /**
   * Keep the inbox current from a live frame: consult events replace the consult; the
   * visitor's messages start a wait, a staff member's answer ends it.
   * @param {object} frame
   * @returns {object|null} the consult the frame changed, if any
   */
  applyFrame(frame) {
    const carried = consultOfFrame(frame, frame && frame.meta && this.consults.get((frame.meta.consult || {}).id));
    if (carried) {
      this.upsert(carried);
      // The message carries a brief: the whole consult (visitor, way in, wait) is read again.
      this.fetchOne(carried.id);
      return this.consults.get(carried.id);
    }
    if (!frame || frame.op !== "message") return null;
    const c = this.byConv(frame.conv);
    if (!c || frame.kind === "system" || frame.kind === "order_event") return null;
    const visitor = c.visitor && c.visitor.id;
    if (frame.sender === visitor) {
      if (waitingSince(c) === null) c.waiting_since_ts = frame.ts || Date.now();
      if (c.status === "closed") c.status = c.assignee ? "open" : "queued";
    } else if (!frame.internal) {
      c.waiting_since_ts = null;
      if (!c.first_response_ts) c.first_response_ts = frame.ts || Date.now();
    } else {
      return null;
    }
    this.render();
    this.changed();
    return c;
  }

  /**
   * Read one consult again (`GET /api/consults/{id}`) after an event about it.
   * @param {string} id
   */
  async fetchOne(id) {
    try {
      const full = await api(`/api/consults/${encodeURIComponent(id)}`);
      if (full && full.id) this.upsert(full);
    } catch (err) {
      // Gone from this user's sight (moved to another role): the brief stays as it was.
      if (err && err.status === 404) return;
      console.warn("consult not refreshed", id, err);
    }
  }

  /** Which views a consult is in, by the rules the server lists them with. */
  inView(c, view) {
    const closed = c.status === "closed";
    if (closed && !this.withClosed) return false;
    const mine = c.assignee && c.assignee.id === this.me.id;
    const roles = this.me.roles || [];
    const served = Array.isArray(c.roles) ? c.roles : c.role ? [c.role] : [];
    // Not known yet (a brief from an event, until it is read again): taken as theirs.
    const ofMyRoles = served.length === 0 || served.some((r) => roles.includes(r));
    if (view === "unassigned") return !closed && !c.assignee && (this.admin || ofMyRoles);
    if (view === "mine") return Boolean(mine);
    if (view === "role") return ofMyRoles;
    return this.admin;
  }

  /** @returns {object[]} the consults of a view, waiting longest first */
  listOf(view) {
    return Array.from(this.consults.values())
      .filter((c) => this.inView(c, view))
      .sort(compare);
  }

  /** How many consults of a view are open or queued (what the badges count). */
  count(view) {
    let n = 0;
    for (const c of this.consults.values()) if (c.status !== "closed" && this.inView(c, view)) n += 1;
    return n;
  }

  /**
   * The number the conversation list's tab shows: what needs someone now, the consults
   * nobody has taken and this user's own whose visitor waits for an answer.
   */
  badge() {
    let n = this.count("unassigned");
    for (const c of this.consults.values())
      if (c.status !== "closed" && this.inView(c, "mine") && waitingSince(c) !== null) n += 1;
    return n;
  }

  /**
   * Show only consults whose visitor, page, product or tag contains `query`.
   * @param {string} query lower case
   */
  setQuery(query) {
    if (query === this.query) return;
    this.query = query;
    this.render();
  }

  /** Mark the open consult's row. */
  setActive(convId) {
    this.active = convId;
    for (const node of this.list.querySelectorAll("[data-testid='inbox-item']")) {
      const on = node.dataset.convId === convId;
      node.classList.toggle("active", on);
      if (on) node.setAttribute("aria-current", "true");
      else node.removeAttribute("aria-current");
    }
  }

  /** @param {"unassigned"|"mine"|"role"|"all"} view */
  setView(view) {
    if (!this.views.includes(view)) return;
    this.view = view;
    this.chosen = true;
    this.render();
  }

  changed() {
    if (this.onChange) this.onChange(this);
  }

  matches(c) {
    if (!this.query) return true;
    const hay = [visitorName(c), c.page_url, c.sku, c.tag, c.assignee && c.assignee.display_name]
      .filter(Boolean)
      .join(" ")
      .toLowerCase();
    return hay.includes(this.query);
  }

  render() {
    clear(this.tabs);
    for (const view of this.views) {
      const on = view === this.view;
      const n = this.count(view);
      this.tabs.append(
        h(
          "button",
          {
            type: "button",
            role: "tab",
            class: on ? "tab active" : "tab",
            "aria-selected": on ? "true" : "false",
            testid: `inbox-view-${view}`,
            dataset: { count: String(n) },
            on: { click: () => this.setView(view) },
          },
          t(`cs.view.${view}`),
          h("span", { class: "cs-count", testid: "inbox-count" }, String(n)),
        ),
      );
    }
    const items = this.listOf(this.view).filter((c) => this.matches(c));
    clear(this.list).append(...items.map((c) => this.row(c)));
    this.empty.hidden = items.length > 0;
    if (this.error) this.empty.textContent = t("cs.loadFailed", { message: this.error });
    else if (!this.loaded) this.empty.textContent = t("common.loading");
    else this.empty.textContent = t(`cs.empty.${this.view}`);
  }

  row(c) {
    const conv = convOf(c);
    const since = waitingSince(c);
    const waiting =
      c.status === "closed"
        ? null
        : since !== null
          ? h(
              "span",
              { class: "cs-wait", testid: "inbox-waiting", dataset: { since: String(since) } },
              icon("clock"),
              t("cs.waiting", { time: durationText(Date.now() - since) }),
            )
          : h("span", { class: "cs-wait cs-answered", testid: "inbox-waiting" }, t("cs.answered"));
    const agent = c.assignee
      ? t("cs.agentIs", { name: c.assignee.display_name || "" })
      : c.status === "queued" && c.position
        ? t("cs.position", { n: c.position })
        : t("cs.unassigned");
    const from = sourceText(c);
    const button = h(
      "button",
      {
        type: "button",
        class: ["cs-item", conv === this.active ? "active" : null, since !== null ? "is-waiting" : null],
        testid: "inbox-item",
        dataset: { consultId: c.id, convId: conv, status: c.status },
        "aria-current": conv === this.active ? "true" : null,
        on: { click: () => this.onOpen(conv, c) },
      },
      avatar(c.visitor, (c.visitor && c.visitor.id) || c.id, "lg"),
      h(
        "span",
        { class: "cs-item-body" },
        h(
          "span",
          { class: "cs-line" },
          h("span", { class: "cs-visitor", testid: "inbox-visitor" }, visitorName(c)),
          waiting,
        ),
        h(
          "span",
          { class: "cs-line" },
          statusChip(c, "inbox-status"),
          c.escalated_ts && c.status !== "closed"
            ? h("span", { class: "cs-escalated", testid: "inbox-escalated" }, icon("alert"), t("cs.escalated"))
            : null,
          h("span", { class: "cs-agent", testid: "inbox-agent" }, agent),
          from ? h("span", { class: "cs-source", testid: "inbox-source" }, from) : null,
        ),
        c.page_url || c.sku
          ? h(
              "span",
              { class: "cs-line cs-where" },
              c.sku ? h("span", { class: "cs-sku", testid: "inbox-sku" }, t("cs.skuIs", { sku: c.sku })) : null,
              c.page_url
                ? h("span", { class: "cs-page", testid: "inbox-page", title: c.page_url }, shortUrl(c.page_url))
                : null,
            )
          : null,
      ),
    );
    return h("li", { dataset: { consult: c.id } }, button);
  }
}
