/**
 * The list of conversations: orders, team channels and direct chats, newest activity
 * first, with unread counts, urgent markers and a filter. Counts follow docs/protocol.md
 * §11: unread = last_seq - read_seq, kept current from `message` and own `read` events.
 */

import { h, clear } from "../dom.js";
import { pickText, t, tOr } from "../i18n.js";
import { icon } from "./icons.js";
import { mentionsMe } from "./mentions.js";
import { avatar, onLang, previewText, shortWhen, userName } from "./util.js";
import "./strings.js";
import "./strings-convs.js";
import "./strings-webfix.js";
import "./strings-search.js";
import "./strings-consults.js";

// The server's per-conversation flags (docs/conversations.md) behind the filter chips.
const FLAGS = [
  ["needs_me", "flt.needsMe"],
  ["exception_open", "flt.exceptions"],
  ["waiting_customer", "flt.waiting"],
];

const TABS = [
  ["all", "list.all"],
  ["consult", "cs.tab"],
  ["order", "list.orders"],
  ["channel", "list.channels"],
  ["direct", "list.direct"],
  ["unread", "list.unread"],
];

function serverUrgent(c) {
  const n = c.unread_urgent || 0;
  return typeof n === "number" ? n : 0;
}

export class ConvList {
  /**
   * @param {{me: object, members: Map<string, object>, onSelect: (id: string) => void,
   *          onNewDirect?: () => void, onNewGroup?: () => void,
   *          onMenu?: (c: object) => void, onRetry?: () => void,
   *          inbox?: {el: HTMLElement, badge: () => number, setQuery: (q: string) => void}}} options
   *   `inbox` (the consults inbox, ui/consults.js) shows under its own tab instead of the list.
   */
  constructor({ me, members, onSelect, onNewDirect, onNewGroup, onMenu, onRetry, inbox }) {
    this.me = me;
    this.inbox = inbox || null;
    // Each consult conversation's consult (status for its row), by conversation id.
    this.consults = new Map();
    this.onRetry = onRetry || null;
    this.members = members;
    this.onSelect = onSelect;
    this.onMenu = onMenu || null;
    this.convs = new Map();
    this.orders = new Map();
    this.nodes = new Map();
    this.active = null;
    this.tab = "all";
    this.flag = null;
    this.query = "";
    this.loaded = false;
    this.error = null;
    this.frame = 0;
    this.filterLabel = "list.filter";

    this.filter = h("input", {
      type: "search",
      class: "conv-filter",
      testid: "conv-filter",
      placeholder: t("list.filter"),
      "aria-label": t("list.filter"),
      autocomplete: "off",
      enterkeyhint: "search",
    });
    this.filter.addEventListener("input", () => {
      this.query = this.filter.value.trim().toLowerCase();
      if (this.inbox) this.inbox.setQuery(this.query);
      this.render();
    });
    this.tabs = h("div", { class: "conv-tabs", role: "tablist" });
    this.chips = h("div", { class: "conv-chips", testid: "conv-chips", role: "group", "aria-label": t("flt.label") });
    this.list = h("ul", { class: "conv-list", testid: "conv-list", role: "list" });
    this.empty = h("p", { class: "conv-empty", hidden: true });
    this.scroll = h("div", { class: "conv-scroll" }, this.list, this.empty);
    this.newBtn = onNewDirect
      ? h(
          "button",
          {
            type: "button",
            class: "icon-btn",
            testid: "new-direct",
            title: t("list.newDirect"),
            "aria-label": t("list.newDirect"),
            on: { click: onNewDirect },
          },
          icon("plus"),
        )
      : null;
    this.groupBtn = onNewGroup
      ? h(
          "button",
          {
            type: "button",
            class: "icon-btn",
            testid: "new-group",
            title: t("grp.new"),
            "aria-label": t("grp.new"),
            on: { click: onNewGroup },
          },
          icon("users"),
        )
      : null;
    this.heading = h("h2", { class: "pane-title" }, t("list.title"));
    this.el = h(
      "section",
      { class: "convs", "aria-label": t("list.title") },
      h("div", { class: "convs-head" }, this.heading, this.groupBtn, this.newBtn),
      h("div", { class: "conv-search" }, icon("search", "search-icon"), this.filter),
      this.tabs,
      this.chips,
      this.scroll,
    );
    if (this.inbox) this.scroll.prepend(this.inbox.el);
    this.renderTabs();
    this.render();
    this.offLang = onLang(() => {
      this.filter.placeholder = t(this.filterLabel);
      this.filter.setAttribute("aria-label", t(this.filterLabel));
      this.heading.textContent = t("list.title");
      if (this.groupBtn) {
        this.groupBtn.title = t("grp.new");
        this.groupBtn.setAttribute("aria-label", t("grp.new"));
      }
      if (this.newBtn) {
        this.newBtn.title = t("list.newDirect");
        this.newBtn.setAttribute("aria-label", t("list.newDirect"));
      }
      this.renderTabs();
      this.nodes.clear();
      this.render();
    });
  }

  /**
   * Show `el` under the conversations the box matches (the message search's results),
   * and say in the box that it searches messages too.
   * @param {HTMLElement} el
   */
  showBelow(el) {
    this.scroll.append(el);
    this.filterLabel = "search.placeholder";
    this.filter.placeholder = t(this.filterLabel);
    this.filter.setAttribute("aria-label", t(this.filterLabel));
  }

  renderTabs() {
    clear(this.tabs);
    for (const [key, label] of TABS) {
      if (key === "consult" && !this.inbox) continue;
      const count = key === "consult" ? this.inbox.badge() : 0;
      this.tabs.appendChild(
        h(
          "button",
          {
            type: "button",
            role: "tab",
            class: key === this.tab ? "tab active" : "tab",
            "aria-selected": key === this.tab ? "true" : "false",
            testid: `conv-tab-${key}`,
            on: {
              click: () => {
                this.tab = key;
                this.renderTabs();
                this.render();
              },
            },
          },
          t(label),
          key === "consult"
            ? h(
                "span",
                { class: "tab-count", testid: "conv-tab-count", hidden: count === 0, dataset: { count } },
                String(count),
              )
            : null,
        ),
      );
    }
  }

  /**
   * Note a consult conversation's consult (its status shows on the row), and redraw
   * the consults tab's count.
   * @param {object} consult
   * @param {string} convId
   */
  setConsult(consult, convId) {
    const prev = this.consults.get(convId);
    this.consults.set(convId, consult);
    if (!prev || prev.status !== consult.status || prev.visitor?.display_name !== consult.visitor?.display_name)
      this.nodes.delete(convId);
    this.render();
  }

  /** Redraw the tabs' counts (the consults inbox changed). */
  refreshTabs() {
    const shown = this.tabs.querySelector("[data-testid='conv-tab-count']");
    const count = this.inbox ? this.inbox.badge() : 0;
    if (shown && shown.dataset.count === String(count)) return;
    this.renderTabs();
  }

  /**
   * Replace the whole list (after sign-in or a reconnect that lost the cursor).
   * @param {object[]} list conversation summaries
   */
  setConversations(list) {
    const old = this.convs;
    this.convs = new Map();
    for (const c of list || []) {
      const prev = old.get(c.id);
      this.convs.set(c.id, this.decorate(c, prev));
    }
    this.loaded = true;
    this.error = null;
    this.nodes.clear();
    this.render();
  }

  decorate(c, prev) {
    const item = { ...c, urgentSeqs: new Set(), mentionSeqs: new Set(), serverUrgent: serverUrgent(c) };
    if (prev) {
      for (const s of prev.urgentSeqs) if (s > (c.read_seq || 0)) item.urgentSeqs.add(s);
      for (const s of prev.mentionSeqs) if (s > (c.read_seq || 0)) item.mentionSeqs.add(s);
    }
    const lm = c.last_message;
    if (lm && lm.sender !== this.me.id && lm.seq > (c.read_seq || 0)) {
      if (lm.urgent) item.urgentSeqs.add(lm.seq);
      if (mentionsMe(lm.mentions, this.me)) item.mentionSeqs.add(lm.seq);
    }
    return item;
  }

  /**
   * Show that loading failed, with the reason.
   * @param {string} text
   */
  setError(text) {
    this.error = text;
    this.render();
  }

  /**
   * Add or refresh one conversation from a summary (a new direct chat, an `added` event).
   * @param {object} summary
   */
  upsert(summary) {
    const prev = this.convs.get(summary.id);
    const merged = prev ? { ...prev, ...summary } : summary;
    this.convs.set(summary.id, this.decorate(merged, prev));
    this.nodes.delete(summary.id);
    this.render();
  }

  /**
   * Drop a conversation (this user was removed or left).
   * @param {string} id
   */
  remove(id) {
    this.convs.delete(id);
    this.nodes.delete(id);
    this.render();
  }

  /**
   * @param {string} id
   * @returns {object|undefined} the summary as currently known
   */
  get(id) {
    return this.convs.get(id);
  }

  /**
   * Highlight the open conversation.
   * @param {string|null} id
   */
  setActive(id) {
    this.active = id;
    for (const [cid, node] of this.nodes) {
      const button = node.firstChild;
      button.classList.toggle("active", cid === id);
      if (cid === id) button.setAttribute("aria-current", "true");
      else button.removeAttribute("aria-current");
    }
  }

  /**
   * Show an order's status beside its conversation.
   * @param {object} order
   */
  setOrder(order) {
    if (!order || !order.conv) return;
    this.orders.set(order.conv, order);
    this.nodes.delete(order.conv);
    this.render();
  }

  /**
   * Keep counts and previews current from a live event.
   * @param {object} frame
   * @returns {boolean} false when the conversation is not known yet (the caller fetches it)
   */
  applyFrame(frame) {
    const c = this.convs.get(frame.conv);
    if (!c) return false;
    if (frame.op === "message") {
      if (frame.seq > (c.last_seq || 0)) {
        c.last_seq = frame.seq;
        const m = { ...frame };
        delete m.op;
        delete m.cursor;
        c.last_message = m;
        c.last_activity_ts = Math.max(c.last_activity_ts || 0, frame.ts || 0);
      }
      if (frame.urgent && !frame.recalled && typeof c.urgent_open === "number") c.urgent_open += 1;
      if (frame.sender === this.me.id) {
        c.read_seq = Math.max(c.read_seq || 0, frame.seq);
      } else if (frame.seq > (c.read_seq || 0)) {
        if (frame.urgent) c.urgentSeqs.add(frame.seq);
        if (mentionsMe(frame.mentions, this.me)) c.mentionSeqs.add(frame.seq);
      }
      c.unread = Math.max(0, (c.last_seq || 0) - (c.read_seq || 0));
    } else if (frame.op === "read" && frame.user === this.me.id) {
      c.read_seq = Math.max(c.read_seq || 0, frame.seq);
      c.unread = Math.max(0, (c.last_seq || 0) - c.read_seq);
      for (const s of Array.from(c.urgentSeqs)) if (s <= c.read_seq) c.urgentSeqs.delete(s);
      for (const s of Array.from(c.mentionSeqs)) if (s <= c.read_seq) c.mentionSeqs.delete(s);
      if (c.read_seq >= (c.last_seq || 0)) c.serverUrgent = 0;
    } else if (frame.op === "recalled") {
      if (c.last_message && c.last_message.seq === frame.seq)
        c.last_message = { ...c.last_message, recalled: true, text: "", attachments: [] };
      c.urgentSeqs.delete(frame.seq);
      c.mentionSeqs.delete(frame.seq);
    } else if (frame.op === "message_edited") {
      if (!c.last_message || c.last_message.seq !== frame.seq) return true;
      c.last_message = { ...c.last_message, text: frame.text, edited_ts: frame.edited_at };
    } else if (frame.op === "member" && frame.conversation) {
      c.members = frame.conversation.members;
      if (frame.conversation.title !== undefined) c.title = frame.conversation.title;
    } else {
      return true;
    }
    this.nodes.delete(c.id);
    this.render();
    return true;
  }

  /**
   * Apply this user's own pin/mute change (a `settings` frame or an HTTP answer).
   * @param {{conv: string, pinned: boolean, muted: boolean, pinned_ts?: number|null}} s
   */
  applySettings(s) {
    const c = this.convs.get(s.conv);
    if (!c) return;
    c.pinned = Boolean(s.pinned);
    c.muted = Boolean(s.muted);
    c.pinned_ts = s.pinned_ts || null;
    this.nodes.delete(c.id);
    this.render();
  }

  /**
   * Take the server's flags, settings and urgent counts from a fresh list, keeping the rest.
   * @param {object[]} list conversation summaries
   */
  refreshFlags(list) {
    for (const fresh of list || []) {
      const c = this.convs.get(fresh.id);
      if (!c) continue;
      c.flags = fresh.flags;
      c.urgent_open = fresh.urgent_open;
      c.pinned = fresh.pinned;
      c.muted = fresh.muted;
      c.pinned_ts = fresh.pinned_ts;
      this.nodes.delete(c.id);
    }
    this.render();
  }

  /** Redraw rows whose names depend on the directory (after it loads). */
  refresh() {
    this.nodes.clear();
    this.render();
  }

  /**
   * The title people see for a conversation (a direct chat is named after the other person).
   * @param {object} c
   * @returns {string}
   */
  titleOf(c) {
    if (c.kind === "direct") {
      const other = (c.members || []).find((id) => id !== this.me.id);
      return c.title || (other ? userName(this.members, other) : t("list.direct"));
    }
    if (c.kind === "consult") {
      const consult = this.consults.get(c.id);
      const name = consult && consult.visitor && consult.visitor.display_name;
      return c.title || name || t("cs.visitorFallback");
    }
    return c.title || t("list.channels");
  }

  render() {
    cancelAnimationFrame(this.frame);
    this.frame = requestAnimationFrame(() => this.draw());
  }

  matches(c) {
    if (this.flag && !(c.flags && c.flags[this.flag])) return false;
    if (this.tab === "unread" && !(c.unread > 0)) return false;
    if (this.tab === "consult") return false;
    if (this.tab !== "all" && this.tab !== "unread" && c.kind !== this.tab) return false;
    if (!this.query) return true;
    const order = this.orders.get(c.id);
    const hay = [
      this.titleOf(c),
      c.last_message ? previewText(c.last_message) : "",
      order ? order.number : "",
      order ? pickText(order.status_label, order.status) : "",
    ]
      .join(" ")
      .toLowerCase();
    return hay.includes(this.query);
  }

  draw() {
    const inboxShown = this.tab === "consult" && Boolean(this.inbox);
    if (this.inbox) this.inbox.el.hidden = !inboxShown;
    this.list.hidden = inboxShown;
    const items = Array.from(this.convs.values())
      .filter((c) => this.matches(c))
      .sort(
        (a, b) =>
          Boolean(b.pinned) - Boolean(a.pinned) ||
          (b.pinned_ts || 0) - (a.pinned_ts || 0) ||
          (b.last_activity_ts || b.created_ts || 0) - (a.last_activity_ts || a.created_ts || 0),
      );
    this.drawChips();
    if (inboxShown) this.chips.hidden = true;
    const keep = new Set(items.map((c) => c.id));
    for (const id of Array.from(this.nodes.keys())) if (!keep.has(id)) this.nodes.delete(id);
    for (const li of Array.from(this.list.children)) if (this.nodes.get(li.dataset.conv) !== li) li.remove();
    let cursor = this.list.firstChild;
    for (const c of items) {
      let node = this.nodes.get(c.id);
      if (!node) {
        node = this.row(c);
        this.nodes.set(c.id, node);
      }
      if (node === cursor) cursor = cursor.nextSibling;
      else this.list.insertBefore(node, cursor);
    }
    const total = this.convs.size;
    this.empty.hidden = items.length > 0 || inboxShown;
    this.empty.textContent = this.error
      ? t("list.loadFailed", { message: this.error })
      : !this.loaded
        ? t("list.loading")
        : total === 0
          ? t("list.empty")
          : t("list.noMatch");
    if (this.error !== null && this.onRetry)
      this.empty.append(
        " ",
        h(
          "button",
          { type: "button", class: "btn btn-small", testid: "load-retry", on: { click: () => this.onRetry() } },
          icon("retry"),
          h("span", null, t("wf.loadRetry")),
        ),
      );
  }

  drawChips() {
    clear(this.chips);
    const all = Array.from(this.convs.values());
    const flagged = FLAGS.map(([key, label]) => [key, label, all.filter((c) => c.flags && c.flags[key]).length]);
    this.chips.hidden = !flagged.some(([key, , n]) => n > 0 || key === this.flag);
    for (const [key, label, n] of flagged) {
      const on = this.flag === key;
      this.chips.append(
        h(
          "button",
          {
            type: "button",
            class: on ? "chip active" : "chip",
            "aria-pressed": on ? "true" : "false",
            testid: `conv-chip-${key}`,
            dataset: { count: String(n) },
            on: {
              click: () => {
                this.flag = on ? null : key;
                this.render();
              },
            },
          },
          t(label),
          h("span", { class: "chip-count", testid: "chip-count" }, String(n)),
        ),
      );
    }
  }

  row(c) {
    const title = this.titleOf(c);
    const order = this.orders.get(c.id);
    const lm = c.last_message;
    let preview = lm ? previewText(lm) : t("list.noMessages");
    if (lm && c.kind !== "direct" && lm.kind !== "system" && lm.kind !== "order_event" && !lm.recalled) {
      const who = lm.sender === this.me.id ? t("user.me") : userName(this.members, lm.sender);
      if (who !== t("user.unknown")) preview = `${who}: ${preview}`;
    }
    const unread = c.unread || 0;
    // Urgent until someone handles it (urgent_open); older servers: until read.
    const urgent =
      typeof c.urgent_open === "number"
        ? c.urgent_open > 0
        : unread > 0 && (c.urgentSeqs.size > 0 || c.serverUrgent > 0);
    const mentioned = unread > 0 && c.mentionSeqs.size > 0;
    const muted = Boolean(c.muted);
    const quiet = muted && !mentioned;
    let badge;
    const consult = c.kind === "consult" ? this.consults.get(c.id) : null;
    if (c.kind === "order")
      badge = h("span", { class: "conv-avatar conv-avatar-order", "aria-hidden": "true" }, icon("order"));
    else if (c.kind === "consult")
      badge = h("span", { class: "conv-avatar conv-avatar-consult", "aria-hidden": "true" }, icon("chat"));
    else if (c.kind === "channel")
      badge = h("span", { class: "conv-avatar conv-avatar-channel", "aria-hidden": "true" }, icon("hash"));
    else {
      const other = (c.members || []).find((id) => id !== this.me.id);
      badge = avatar(this.members.get(other), other || c.id, "lg");
    }
    const button = h(
      "button",
      {
        type: "button",
        class: [
          "conv-item",
          c.id === this.active ? "active" : null,
          unread > 0 ? "has-unread" : null,
          urgent ? "is-urgent" : null,
          c.pinned ? "is-pinned" : null,
          muted ? "is-muted" : null,
        ],
        testid: "conv-item",
        dataset: { convId: c.id, kind: c.kind, pinned: c.pinned ? "true" : null, muted: muted ? "true" : null },
        "aria-current": c.id === this.active ? "true" : null,
        on: { click: () => this.onSelect(c.id) },
      },
      badge,
      h(
        "span",
        { class: "conv-body" },
        h(
          "span",
          { class: "conv-line" },
          h("span", { class: "conv-title", testid: "conv-title" }, title),
          c.pinned
            ? h("span", { class: "conv-pin", testid: "conv-pinned", title: t("pin.pinned") }, icon("pin"))
            : null,
          muted
            ? h("span", { class: "conv-mute", testid: "conv-muted", title: t("pin.muted") }, icon("bellOff"))
            : null,
          h("span", { class: "conv-time" }, shortWhen(c.last_activity_ts || (lm && lm.ts) || c.created_ts)),
        ),
        h(
          "span",
          { class: "conv-line" },
          urgent
            ? h(
                "span",
                { class: "conv-urgent", testid: "conv-urgent", title: t("list.urgent") },
                icon("alert"),
                h("span", t("list.urgent")),
              )
            : null,
          mentioned ? h("span", { class: "conv-mention" }, t("list.mentionedMe")) : null,
          order
            ? h(
                "span",
                { class: "status-chip", dataset: { status: order.status } },
                pickText(order.status_label, order.status),
              )
            : null,
          consult
            ? h(
                "span",
                { class: "status-chip cs-status", dataset: { status: `consult-${consult.status}` } },
                tOr(`cs.status.${consult.status}`, consult.status),
              )
            : null,
          h("span", { class: "conv-preview" }, preview),
          unread > 0 && quiet
            ? h("span", { class: "conv-dot", testid: "conv-unread-dot", "aria-label": t("list.unread") })
            : null,
          unread > 0 && !quiet
            ? h(
                "span",
                { class: "conv-unread", testid: "conv-unread", "aria-label": `${t("list.unread")} ${unread}` },
                String(unread),
              )
            : null,
        ),
      ),
    );
    if (this.onMenu)
      button.addEventListener("contextmenu", (event) => {
        event.preventDefault();
        this.onMenu(c);
      });
    return h("li", { dataset: { conv: c.id } }, button);
  }
}
