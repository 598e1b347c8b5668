/**
 * The message list of one conversation, shared by the staff workspace and the customer
 * page. It keeps messages by seq (docs/protocol.md §16: dedupe by conv+seq, fill gaps),
 * shows who has read what from the members' read marks, and sends this user's own read
 * mark for the messages that are actually on screen.
 */

import { h, clear } from "../dom.js";
import { pickText, t } from "../i18n.js";
import { api, errorText } from "../api.js";
import { getSession } from "../session.js";
import { fmtDay, fmtTime } from "../format.js";
import { icon } from "./icons.js";
import { infoDialog } from "./dialogs.js";
import { renderAttachment } from "./players.js";
import { setMediaUrl } from "./media-src.js";
import { richText } from "./mentions.js";
import { avatar, isAdmin, onLang, previewText, storedText, toast, userName } from "./util.js";
import { newRef } from "../ref.js";
import { commandCard, editDialog, editedMark, forwardedLine, mayEdit, mayForward } from "./message-actions.js";
import { urgentStatus } from "./urgent.js";
import { remindersButton } from "./reminders.js";
import { callRecord } from "./call-record.js";
import { productCard } from "./product-card.js";
import "./strings-convs.js";
import "./strings.js";
import "./strings-webfix.js";
import "./strings-photos.js";
import "./strings-evidence.js";

const RECALL_WINDOW_MS = 120 * 1000;
const GROUP_GAP_MS = 5 * 60 * 1000;
const PAGE = 50;

function dayKey(ts) {
  const d = new Date(ts);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

function blank(message) {
  return {
    ...message,
    recalled: true,
    text: "",
    attachments: [],
    mentions: [],
    meta: undefined,
    forwarded_from: undefined,
    edited_ts: undefined,
  };
}

export class Timeline {
  /**
   * @param {{me: object, members: Map<string, object>, conv: object, realtime: object,
   *          onReply?: (message: object) => void, canRecall?: boolean|((message: object) => boolean),
   *          autoRead?: boolean, onForward?: (message: object) => void,
   *          onOpenOriginal?: (link: object) => void}} options
   *   `onForward` offers a forward action; `onOpenOriginal` makes a forward's link open its original.
   *   `conv` is a conversation summary; its `member_reads` (GET /api/conversations/{id})
   *   feed the read receipts and are fetched when missing.
   */
  constructor({ me, members, conv, realtime, onReply, canRecall, autoRead = true, onForward, onOpenOriginal }) {
    const session = getSession();
    this.me = me || (session && session.user) || { id: "", roles: [] };
    this.members = members instanceof Map ? members : new Map();
    this.conv = { ...conv, members: Array.isArray(conv.members) ? conv.members.slice() : [] };
    this.realtime = realtime;
    this.onReply = onReply || null;
    this.onForward = onForward || null;
    this.onOpenOriginal = onOpenOriginal || null;
    // Private answers to this user's queries (command_reply), by command and query: never messages.
    this.cards = new Map();
    this.canRecallOpt = canRecall === undefined ? true : canRecall;
    this.autoRead = autoRead;
    this.memberReads = { ...(conv.member_reads || {}) };
    this.readSeq = conv.read_seq || 0;
    this.sentRead = this.readSeq;
    this.msgs = [];
    this.bySeq = new Map();
    this.urgentState = new Map();
    this.nodes = new Map();
    this.refs = new Set();
    this.pending = [];
    this.quoteCache = new Map();
    this.hasOlder = false;
    this.loadingOlder = false;
    this.filling = false;
    this.typing = new Map();
    this.visible = new Set();
    this.readTimer = null;
    this.destroyed = false;

    this.olderBtn = h(
      "button",
      {
        type: "button",
        class: "btn btn-small tl-older-btn",
        testid: "load-older",
        on: { click: () => this.loadOlder() },
      },
      t("tl.loadOlder"),
    );
    this.olderBox = h("div", { class: "tl-older", hidden: true }, this.olderBtn);
    this.list = h("div", { class: "tl-list" });
    this.pendingBox = h("div", { class: "tl-pending" });
    this.emptyBox = h("p", { class: "tl-empty", hidden: true }, t("tl.empty"));
    this.cardBox = h("div", { class: "tl-cards", testid: "command-cards" });
    this.scroller = h(
      "div",
      { class: "tl-scroll", testid: "timeline", role: "log", "aria-live": "polite", tabindex: "0" },
      this.olderBox,
      this.emptyBox,
      this.list,
      this.pendingBox,
      this.cardBox,
    );
    this.typingEl = h("div", { class: "tl-typing", testid: "typing", "aria-live": "polite" });
    this.jumpBtn = h(
      "button",
      { type: "button", class: "tl-jump", hidden: true, on: { click: () => this.scrollToBottom(true) } },
      t("tl.newMessages"),
      " ↓",
    );
    this.el = h("div", { class: "tl" }, this.scroller, this.jumpBtn, this.typingEl);

    this.scroller.addEventListener("scroll", () => this.onScroll(), { passive: true });
    this.observer = new IntersectionObserver((entries) => this.onIntersect(entries), {
      root: this.scroller,
      threshold: [0, 0.35, 0.7, 1],
    });
    this.onVisibility = () => this.scheduleRead();
    document.addEventListener("visibilitychange", this.onVisibility);
    window.addEventListener("focus", this.onVisibility);
    this.offLang = onLang(() => this.relabel());
    // A pending message says whether it only waits for the server or for the network.
    this.onConnState = () => this.renderPending();
    if (this.realtime && this.realtime.addEventListener) this.realtime.addEventListener("state", this.onConnState);
    if (!conv.member_reads && conv.id) this.fetchReads();
    this.renderTyping();
  }

  /** Stop observing and listening; call when the view goes away. */
  destroy() {
    this.destroyed = true;
    this.observer.disconnect();
    document.removeEventListener("visibilitychange", this.onVisibility);
    window.removeEventListener("focus", this.onVisibility);
    this.offLang();
    if (this.realtime && this.realtime.removeEventListener)
      this.realtime.removeEventListener("state", this.onConnState);
    for (const timer of this.typing.values()) clearTimeout(timer);
    clearTimeout(this.readTimer);
  }

  async fetchReads() {
    try {
      const full = await api(`/api/conversations/${encodeURIComponent(this.conv.id)}`);
      if (this.destroyed || !full) return;
      for (const [user, seq] of Object.entries(full.member_reads || {}))
        this.memberReads[user] = Math.max(this.memberReads[user] || 0, seq);
      if (Array.isArray(full.members)) this.conv.members = full.members.slice();
      this.readSeq = Math.max(this.readSeq, full.read_seq || 0);
      this.sentRead = Math.max(this.sentRead, full.read_seq || 0);
      this.refreshStatuses();
    } catch (err) {
      console.warn("read receipts unavailable", err);
    }
  }

  // ---- data in ---------------------------------------------------------------

  /**
   * Replace everything with a page of history (ascending seq), scrolled to the newest.
   * @param {object[]} list
   */
  setMessages(list) {
    this.msgs = [];
    this.bySeq.clear();
    this.refs.clear();
    for (const m of list || []) this.store(m);
    this.hasOlder = this.msgs.length > 0 && this.msgs[0].seq > 1;
    this.renderAll();
    this.renderPending();
    this.scrollToBottom(false);
    this.scheduleRead();
  }

  store(m) {
    const clean = { ...m };
    delete clean.op;
    delete clean.cursor;
    const had = this.bySeq.has(clean.seq);
    this.bySeq.set(clean.seq, clean);
    if (clean.ref && clean.sender === this.me.id) this.refs.add(clean.ref);
    if (had) {
      const i = this.msgs.findIndex((x) => x.seq === clean.seq);
      this.msgs[i] = clean;
    } else if (this.msgs.length === 0 || clean.seq > this.msgs[this.msgs.length - 1].seq) {
      this.msgs.push(clean);
    } else {
      this.msgs.push(clean);
      this.msgs.sort((a, b) => a.seq - b.seq);
    }
    // Writing moves the writer's read mark on the server without a `read` event:
    // whoever wrote a message has read everything before it.
    if (clean.sender) this.memberReads[clean.sender] = Math.max(this.memberReads[clean.sender] || 0, clean.seq);
    if (clean.sender === this.me.id) {
      this.readSeq = Math.max(this.readSeq, clean.seq);
      this.sentRead = Math.max(this.sentRead, clean.seq);
    }
    return had;
  }

  /**
   * One message from history or a live event; replaces the pending bubble with its ref.
   * @param {object} message
   */
  add(message) {
    if (!message || (message.conv && message.conv !== this.conv.id) || typeof message.seq !== "number") return;
    const last = this.msgs.length ? this.msgs[this.msgs.length - 1].seq : 0;
    const existed = this.bySeq.has(message.seq);
    const near = this.isNearBottom();
    if (existed) {
      const old = this.bySeq.get(message.seq);
      if (old.recalled && !message.recalled) return;
      const same = ["recalled", "purged", "text", "attachments", "meta", "edited_ts", "forwarded_from"].every(
        (k) => JSON.stringify(old[k]) === JSON.stringify(message[k]),
      );
      this.store(message);
      if (!same) this.replaceNode(message.seq);
    } else {
      this.store(message);
      if (message.seq > last) this.appendNode(message.seq);
      else this.renderAll(true);
    }
    if (message.ref && this.pending.some((f) => f.ref === message.ref)) {
      this.pending = this.pending.filter((f) => f.ref !== message.ref);
      this.renderPending();
    }
    if (this.conv.last_seq === undefined || message.seq > this.conv.last_seq) this.conv.last_seq = message.seq;
    if (this.typing.has(message.sender)) this.stopTyping(message.sender);
    this.emptyBox.hidden = this.msgs.length > 0 || this.pending.length > 0;
    if (!existed && last > 0 && message.seq > last + 1) this.fillGap(last);
    if (!existed) {
      if (near || message.sender === this.me.id) this.scrollToBottom(false);
      else if (message.seq > last) this.jumpBtn.hidden = false;
    }
    this.scheduleRead();
  }

  async fillGap(after) {
    if (this.filling) return;
    this.filling = true;
    try {
      const page = await api(
        `/api/conversations/${encodeURIComponent(this.conv.id)}/messages?after=${after}&limit=200`,
      );
      for (const m of (page && page.messages) || []) if (!this.bySeq.has(m.seq)) this.store(m);
      this.renderAll(true);
    } catch (err) {
      console.warn("could not fill a gap in the history", err);
    } finally {
      this.filling = false;
    }
  }

  /**
   * Apply a live event of this conversation: recalled, read, media, typing, member, message.
   * @param {object} frame
   */
  applyFrame(frame) {
    if (!frame || (frame.conv && frame.conv !== this.conv.id)) return;
    switch (frame.op) {
      case "message":
        this.add(frame);
        break;
      case "recalled": {
        const m = this.bySeq.get(frame.seq);
        if (m) {
          this.bySeq.set(frame.seq, blank(m));
          this.msgs[this.msgs.findIndex((x) => x.seq === frame.seq)] = this.bySeq.get(frame.seq);
          this.replaceNode(frame.seq);
          this.refreshQuotes(frame.seq);
        }
        if (this.quoteCache.has(frame.seq)) this.quoteCache.set(frame.seq, blank(this.quoteCache.get(frame.seq)));
        break;
      }
      case "read":
        this.memberReads[frame.user] = Math.max(this.memberReads[frame.user] || 0, frame.seq);
        if (frame.user === this.me.id) {
          this.readSeq = Math.max(this.readSeq, frame.seq);
          this.sentRead = Math.max(this.sentRead, frame.seq);
        }
        this.refreshStatuses();
        break;
      case "media": {
        const m = this.bySeq.get(frame.seq);
        if (!m) break;
        const atts = (m.attachments || []).map((a) => (a.id === frame.id ? { ...a, preview: frame.preview } : a));
        this.bySeq.set(frame.seq, { ...m, attachments: atts });
        this.msgs[this.msgs.findIndex((x) => x.seq === frame.seq)] = this.bySeq.get(frame.seq);
        this.patchMedia(frame);
        break;
      }
      case "typing":
        if (frame.user && frame.user !== this.me.id) this.startTyping(frame.user);
        break;
      case "message_edited":
        this.applyEdit(frame);
        break;
      case "command_reply":
        this.showCard(frame);
        break;
      case "handled":
        this.setUrgentState([{ seq: frame.seq, handled_by: frame.by, handled_ts: frame.ts }]);
        break;
      case "member":
        if (frame.conversation && Array.isArray(frame.conversation.members)) {
          this.conv.members = frame.conversation.members.slice();
          this.refreshStatuses();
        }
        break;
      default:
        break;
    }
  }

  /**
   * Record who handled which urgent messages, and redraw those messages.
   * @param {{seq: number, handled_by?: string|null, handled_ts?: number|null}[]} list
   */
  setUrgentState(list) {
    for (const u of list || []) {
      this.urgentState.set(u.seq, u);
      if (this.nodes.has(u.seq)) this.replaceNode(u.seq);
    }
  }

  /**
   * Show the sends still waiting for their ack (the realtime outbox) as pending bubbles.
   * @param {object[]} frames send frames of any conversation
   */
  showPending(frames) {
    const before = this.pending.length;
    this.pending = (frames || []).filter(
      (f) => f && f.conv === this.conv.id && f.op !== "read" && !this.refs.has(f.ref),
    );
    this.renderPending();
    if (this.pending.length > before) this.scrollToBottom(false);
  }

  /**
   * Fetch the page before the oldest message shown, keeping the reader's place.
   * @returns {Promise<void>}
   */
  async loadOlder() {
    if (this.loadingOlder || !this.hasOlder || this.msgs.length === 0) return;
    this.loadingOlder = true;
    this.olderBtn.disabled = true;
    this.olderBtn.textContent = t("tl.loadingOlder");
    try {
      const first = this.msgs[0].seq;
      const page = await api(
        `/api/conversations/${encodeURIComponent(this.conv.id)}/messages?before=${first}&limit=${PAGE}`,
      );
      const list = (page && page.messages) || [];
      const fromBottom = this.scroller.scrollHeight - this.scroller.scrollTop;
      for (const m of list) if (!this.bySeq.has(m.seq)) this.store(m);
      this.hasOlder = list.length > 0 && this.msgs[0].seq > 1;
      this.renderAll();
      this.scroller.scrollTop = this.scroller.scrollHeight - fromBottom;
    } catch (err) {
      toast(errorText(err), "error");
    } finally {
      this.loadingOlder = false;
      this.olderBtn.disabled = false;
      this.olderBtn.textContent = t("tl.loadOlder");
      this.olderBox.hidden = !this.hasOlder;
    }
  }

  /**
   * Scroll to a message and flash it (used by quotes).
   * @param {number} seq
   */
  reveal(seq) {
    const node = this.nodes.get(seq);
    if (!node) return;
    node.scrollIntoView({ block: "center", behavior: "smooth" });
    node.classList.remove("flash");
    void node.offsetWidth;
    node.classList.add("flash");
  }

  // ---- scrolling and read marks ------------------------------------------------

  isNearBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 120;
  }

  scrollToBottom(smooth) {
    const go = () => {
      this.scroller.scrollTo({ top: this.scroller.scrollHeight, behavior: smooth ? "smooth" : "auto" });
      this.jumpBtn.hidden = true;
    };
    go();
    requestAnimationFrame(go);
  }

  onScroll() {
    if (this.scroller.scrollTop < 60 && this.hasOlder && !this.loadingOlder && this.msgs.length > 0) this.loadOlder();
    if (this.isNearBottom()) this.jumpBtn.hidden = true;
  }

  onIntersect(entries) {
    for (const e of entries) {
      const seq = Number(e.target.dataset.seq);
      if (!seq) continue;
      const tall = e.intersectionRect.height > 140;
      if (e.isIntersecting && (e.intersectionRatio >= 0.35 || tall)) this.visible.add(seq);
      else this.visible.delete(seq);
    }
    this.scheduleRead();
  }

  scheduleRead() {
    if (!this.autoRead || this.destroyed) return;
    clearTimeout(this.readTimer);
    this.readTimer = setTimeout(() => this.markRead(), 300);
  }

  markRead() {
    if (this.destroyed || document.visibilityState !== "visible" || !this.el.isConnected) return;
    if (this.scroller.offsetParent === null && getComputedStyle(this.scroller).position !== "fixed") return;
    let top = 0;
    for (const seq of this.visible) if (seq > top) top = seq;
    if (top <= this.sentRead || !this.bySeq.has(top)) return;
    this.sentRead = top;
    if (!this.realtime || typeof this.realtime.op !== "function") return;
    Promise.resolve(this.realtime.op({ op: "read", conv: this.conv.id, seq: top })).catch((err) => {
      console.warn("read mark not sent", err);
    });
  }

  // ---- edits, forwards and private answers --------------------------------------

  /** A new version of a message's text (live, replayed, or this user's own just saved). */
  applyEdit(frame) {
    const m = this.bySeq.get(frame.seq);
    if (m && !m.recalled) {
      this.bySeq.set(frame.seq, { ...m, text: frame.text, edited_ts: frame.edited_at });
      this.msgs[this.msgs.findIndex((x) => x.seq === frame.seq)] = this.bySeq.get(frame.seq);
      this.replaceNode(frame.seq);
      this.refreshQuotes(frame.seq);
    }
    const quoted = this.quoteCache.get(frame.seq);
    if (quoted) this.quoteCache.set(frame.seq, { ...quoted, text: frame.text, edited_ts: frame.edited_at });
  }

  async edit(m) {
    const current = this.bySeq.get(m.seq) || m;
    await editDialog(current, async (text) => {
      const ack = await this.realtime.op({ op: "edit", ref: newRef(), conv: this.conv.id, seq: m.seq, text });
      this.applyEdit({ seq: m.seq, text, edited_at: ack && ack.ts ? ack.ts : Date.now() });
      return ack;
    });
  }

  /** Show (or replace) the private card of a query's answer; one card per command and query. */
  showCard(reply) {
    const key = `${reply.command}\u0000${reply.query || ""}`;
    const old = this.cards.get(key);
    const card = commandCard(reply, {
      ask: (command) => this.ask(command),
      dismiss: () => {
        card.remove();
        this.cards.delete(key);
      },
    });
    if (old) old.replaceWith(card);
    else this.cardBox.appendChild(card);
    this.cards.set(key, card);
    this.emptyBox.hidden = true;
    this.scrollToBottom(false);
  }

  /** Ask a query again (another page): sent like a message, answered to this user alone. */
  ask(command) {
    if (!this.realtime) return;
    this.realtime.send({ op: "send", ref: newRef(), conv: this.conv.id, kind: "text", text: command }).catch((err) => {
      toast(errorText(err), "error");
    });
  }

  // ---- rendering ---------------------------------------------------------------

  relabel() {
    this.olderBtn.textContent = t("tl.loadOlder");
    this.emptyBox.textContent = t("tl.empty");
    clear(this.jumpBtn).append(t("tl.newMessages"), " ↓");
    this.renderAll(true);
    this.renderPending();
    this.renderTyping();
  }

  renderAll(keepPlace) {
    const anchor = keepPlace ? this.scroller.scrollHeight - this.scroller.scrollTop : null;
    const atBottom = this.isNearBottom();
    for (const node of this.nodes.values()) this.observer.unobserve(node);
    this.nodes.clear();
    clear(this.list);
    let prev = null;
    for (const m of this.msgs) {
      if (!prev || dayKey(prev.ts) !== dayKey(m.ts)) this.list.appendChild(this.daySep(m.ts));
      const node = this.renderMessage(m, prev);
      this.nodes.set(m.seq, node);
      this.list.appendChild(node);
      this.observer.observe(node);
      prev = m;
    }
    this.olderBox.hidden = !this.hasOlder;
    this.emptyBox.hidden = this.msgs.length > 0 || this.pending.length > 0;
    if (keepPlace && anchor !== null) {
      if (atBottom) this.scrollToBottom(false);
      else this.scroller.scrollTop = this.scroller.scrollHeight - anchor;
    }
  }

  appendNode(seq) {
    const i = this.msgs.findIndex((x) => x.seq === seq);
    const m = this.msgs[i];
    const prev = i > 0 ? this.msgs[i - 1] : null;
    if (!prev || dayKey(prev.ts) !== dayKey(m.ts)) this.list.appendChild(this.daySep(m.ts));
    const node = this.renderMessage(m, prev);
    this.nodes.set(seq, node);
    this.list.appendChild(node);
    this.observer.observe(node);
  }

  replaceNode(seq) {
    const old = this.nodes.get(seq);
    if (!old) return;
    const i = this.msgs.findIndex((x) => x.seq === seq);
    const node = this.renderMessage(this.msgs[i], i > 0 ? this.msgs[i - 1] : null);
    this.observer.unobserve(old);
    old.replaceWith(node);
    this.nodes.set(seq, node);
    this.observer.observe(node);
  }

  /** A finished preview: swap it in without interrupting a video or voice message that is playing. */
  patchMedia(frame) {
    const node = this.nodes.get(frame.seq);
    if (!node) return;
    const el = Array.from(node.querySelectorAll("[data-media]")).find((x) => x.dataset.media === frame.id);
    const p = frame.preview || {};
    if (el && el.tagName === "IMG") {
      if (p.status === "ready" && p.url) setMediaUrl(el, "src", p.url);
      if (p.width && p.height && el.parentElement) el.parentElement.style.aspectRatio = `${p.width} / ${p.height}`;
      return;
    }
    if (el && el.tagName === "VIDEO") {
      if (p.status === "ready" && p.url) setMediaUrl(el, "poster", p.url);
      return;
    }
    if (el && el.tagName === "AUDIO" && (!el.paused || el.currentTime > 0)) return;
    this.replaceNode(frame.seq);
  }

  refreshQuotes(seq) {
    for (const m of this.msgs) if (m.reply_to === seq) this.replaceNode(m.seq);
  }

  daySep(ts) {
    return h("div", { class: "day-sep", testid: "day-separator", role: "separator" }, h("span", fmtDay(ts)));
  }

  name(id) {
    if (id === this.me.id) return this.me.display_name || this.me.username || t("user.me");
    return userName(this.members, id);
  }

  renderMessage(m, prev) {
    if (m.purged && !m.recalled) return this.renderPurged(m);
    if (m.kind === "system") return this.renderSystem(m);
    if (m.kind === "order_event") return this.renderEvent(m);
    if (m.kind === "call" && !m.recalled) return callRecord(m, (id) => this.name(id));
    const mine = m.sender === this.me.id;
    const cont =
      prev &&
      prev.sender === m.sender &&
      prev.kind !== "system" &&
      prev.kind !== "order_event" &&
      prev.kind !== "call" &&
      !prev.recalled &&
      !m.recalled &&
      m.ts - prev.ts < GROUP_GAP_MS &&
      dayKey(prev.ts) === dayKey(m.ts);
    const attrs = {
      class: [
        "msg",
        mine ? "mine" : "theirs",
        cont ? "cont" : null,
        m.urgent ? "msg-urgent" : null,
        m.internal ? "msg-internal" : null,
      ],
      testid: "msg",
      dataset: { seq: m.seq, id: m.id, ref: m.ref || null, kind: m.kind, sender: m.sender },
    };
    if (m.recalled) {
      attrs.class = ["msg", "msg-recalled", mine ? "mine" : "theirs"];
      attrs.dataset.recalled = "true";
      if (mine) attrs.dataset.state = this.stateOf(m).state;
      return h(
        "div",
        attrs,
        h("span", { class: "sr-only", testid: "msg-sender" }, this.name(m.sender)),
        h(
          "span",
          { class: "recalled-text" },
          mine ? t("tl.recalledMine") : t("tl.recalledBy", { name: this.name(m.sender) }),
        ),
        h("span", { class: "sr-only", testid: "msg-time" }, fmtTime(m.ts)),
      );
    }
    const user = this.members.get(m.sender) || (mine ? this.me : null);
    const senderEl = h(
      "span",
      {
        class: mine || cont || this.conv.kind === "direct" ? "msg-sender sr-only" : "msg-sender",
        testid: "msg-sender",
      },
      this.name(m.sender),
    );
    const timeEl = h(
      "time",
      {
        class: "msg-time",
        testid: "msg-time",
        datetime: new Date(m.ts).toISOString(),
        title: `${fmtDay(m.ts)} ${fmtTime(m.ts)}`,
      },
      fmtTime(m.ts),
    );
    const badges = [
      m.urgent ? h("span", { class: "badge badge-urgent", testid: "msg-urgent" }, icon("alert"), t("tl.urgent")) : null,
      m.internal ? h("span", { class: "badge badge-internal" }, icon("lock"), t("tl.internal")) : null,
      m.urgent ? urgentStatus(m, this.urgentState.get(m.seq), { me: this.me, members: this.members }) : null,
      m.urgent && mine ? this.remindersFor(m) : null,
    ];
    const bubble = h("div", { class: "bubble" }, forwardedLine(m, this.onOpenOriginal), this.quote(m), this.body(m));
    const status = mine ? this.statusEl(m) : null;
    if (mine) attrs.dataset.state = this.stateOf(m).state;
    const node = h(
      "div",
      attrs,
      mine ? null : h("div", { class: "msg-avatar" }, cont ? null : avatar(user, m.sender)),
      h(
        "div",
        { class: "msg-main" },
        h("div", { class: "msg-meta" }, senderEl, mine ? null : timeEl, badges, editedMark(m)),
        h("div", { class: "msg-row" }, bubble, this.actions(m)),
        mine ? h("div", { class: "msg-foot" }, timeEl, status) : null,
      ),
    );
    node.addEventListener("mouseenter", () => this.refreshRecall(node, m));
    node.addEventListener("focusin", () => this.refreshRecall(node, m));
    bubble.addEventListener("click", (event) => {
      if (event.target.closest("a, button, audio, video, input")) return;
      for (const other of this.list.querySelectorAll(".msg.show-actions"))
        if (other !== node) other.classList.remove("show-actions");
      node.classList.toggle("show-actions");
      this.refreshRecall(node, m);
    });
    return node;
  }

  /**
   * A message whose content the retention policy removed: its place, sender and time
   * stay (its hash still links the chain), its content is a muted line.
   */
  renderPurged(m) {
    const mine = m.sender === this.me.id;
    const person = m.kind !== "system" && m.kind !== "order_event" && m.sender;
    return h(
      "div",
      {
        class: ["msg", "msg-purged", mine ? "mine" : "theirs"],
        testid: "msg",
        dataset: { seq: m.seq, id: m.id, kind: m.kind, sender: m.sender, purged: "true" },
      },
      person ? h("span", { class: "purged-sender", testid: "msg-sender" }, this.name(m.sender)) : null,
      h("span", { class: "purged-text", testid: "msg-purged" }, t("msg.purged")),
      h(
        "time",
        { class: "msg-time", testid: "msg-time", datetime: new Date(m.ts).toISOString(), title: fmtDay(m.ts) },
        fmtTime(m.ts),
      ),
    );
  }

  /** The sender's way to watch an urgent message's reminders climb. */
  remindersFor(m) {
    return remindersButton(
      { ...m, conv: this.conv.id },
      {
        nameOf: (id) => this.name(id),
        audience: () => this.audience(m),
        hasRead: (id) => (this.memberReads[id] || 0) >= m.seq,
      },
    );
  }

  body(m) {
    const parts = [];
    // A shared product is its card; the message's text only stands in for it elsewhere.
    if (m.kind === "product" && m.meta && m.meta.product) return [productCard(m.meta.product)];
    const atts = m.attachments || [];
    if (atts.length) {
      const cls = m.kind === "image" && atts.length > 1 ? "atts atts-grid" : "atts";
      parts.push(
        h(
          "div",
          { class: cls },
          atts.map((a) => renderAttachment(a, m.kind)),
        ),
      );
    }
    if (m.text)
      parts.push(
        h(
          "div",
          { class: "msg-text", testid: "msg-text", dir: "auto" },
          richText(m.text, m.mentions || [], this.members, this.me),
        ),
      );
    return parts;
  }

  quote(m) {
    if (!m.reply_to) return null;
    const target = this.bySeq.get(m.reply_to) || this.quoteCache.get(m.reply_to);
    const box = h("button", { type: "button", class: "msg-quote", testid: "msg-quote", dataset: { seq: m.reply_to } });
    const fill = (q) => {
      clear(box);
      if (!q) {
        box.append(h("span", { class: "quote-text" }, t("tl.quoteMissing")));
        return;
      }
      box.append(
        h("span", { class: "quote-sender" }, this.name(q.sender)),
        h("span", { class: "quote-text" }, previewText(q) || "…"),
      );
    };
    if (target) fill(target);
    else {
      box.append(h("span", { class: "quote-text" }, "…"));
      this.fetchQuote(m.reply_to).then((q) => {
        if (box.isConnected) fill(q);
      });
    }
    box.addEventListener("click", () => this.reveal(m.reply_to));
    return box;
  }

  async fetchQuote(seq) {
    if (this.quoteCache.has(seq)) return this.quoteCache.get(seq);
    try {
      const page = await api(
        `/api/conversations/${encodeURIComponent(this.conv.id)}/messages?after=${seq - 1}&limit=1`,
      );
      const q = page && page.messages && page.messages[0] && page.messages[0].seq === seq ? page.messages[0] : null;
      this.quoteCache.set(seq, q);
      return q;
    } catch {
      return null;
    }
  }

  mayRecall(m) {
    if (!m || m.recalled || !m.seq || m.kind === "system") return false;
    if (this.canRecallOpt === false) return false;
    if (typeof this.canRecallOpt === "function" && !this.canRecallOpt(m)) return false;
    if (isAdmin(this.me)) return true;
    if (typeof this.canRecallOpt === "function") return Date.now() - m.ts < RECALL_WINDOW_MS;
    return m.sender === this.me.id && m.kind === "text" && Date.now() - m.ts < RECALL_WINDOW_MS;
  }

  couldEverRecall(m) {
    if (this.canRecallOpt === false || m.recalled) return false;
    if (typeof this.canRecallOpt === "function") return isAdmin(this.me) || Boolean(this.canRecallOpt(m));
    return isAdmin(this.me) || (m.sender === this.me.id && m.kind === "text");
  }

  refreshRecall(node, m) {
    const btn = node.querySelector("[data-testid='msg-recall']");
    if (btn) btn.hidden = !this.mayRecall(this.bySeq.get(m.seq) || m);
    const edit = node.querySelector("[data-testid='msg-edit']");
    if (edit) edit.hidden = !mayEdit(this.bySeq.get(m.seq) || m, this.me);
  }

  actions(m) {
    const items = [];
    if (this.onReply) {
      items.push(
        h(
          "button",
          {
            type: "button",
            class: "icon-btn",
            testid: "msg-reply",
            title: t("tl.reply"),
            "aria-label": t("tl.reply"),
            on: { click: () => this.onReply(this.bySeq.get(m.seq) || m) },
          },
          icon("reply"),
        ),
      );
    }
    if (this.couldEverRecall(m)) {
      items.push(
        h(
          "button",
          {
            type: "button",
            class: "icon-btn",
            testid: "msg-recall",
            title: t("tl.recall"),
            "aria-label": t("tl.recall"),
            hidden: !this.mayRecall(m),
            on: { click: (event) => this.recall(m, event.currentTarget) },
          },
          icon("recall"),
        ),
      );
    }
    if (m.sender === this.me.id && !m.recalled && this.realtime) {
      items.push(
        h(
          "button",
          {
            type: "button",
            class: "icon-btn text-btn",
            testid: "msg-edit",
            title: t("msgs.edit"),
            hidden: !mayEdit(m, this.me),
            on: { click: () => this.edit(m) },
          },
          t("msgs.edit"),
        ),
      );
    }
    if (this.onForward && mayForward(m)) {
      items.push(
        h(
          "button",
          {
            type: "button",
            class: "icon-btn text-btn",
            testid: "msg-forward",
            title: t("msgs.forward"),
            on: { click: () => this.onForward(this.bySeq.get(m.seq) || m) },
          },
          t("msgs.forward"),
        ),
      );
    }
    if (items.length === 0) return null;
    return h("div", { class: "msg-actions", role: "group", "aria-label": t("tl.actions") }, items);
  }

  async recall(m, button) {
    if (!this.realtime) return;
    button.disabled = true;
    try {
      await this.realtime.op({ op: "recall", ref: newRef(), conv: this.conv.id, seq: m.seq });
      const current = this.bySeq.get(m.seq);
      if (current && !current.recalled) this.applyFrame({ op: "recalled", conv: this.conv.id, seq: m.seq });
    } catch (err) {
      button.disabled = false;
      toast(t("tl.recallFailed", { message: errorText(err) }), "error");
    }
  }

  /** The people a message could be read by: the other members (staff only for staff notes). */
  audience(m) {
    return (this.conv.members || []).filter((id) => {
      if (id === m.sender) return false;
      if (m.internal) {
        const u = this.members.get(id);
        if (u && u.kind === "customer") return false;
      }
      return true;
    });
  }

  stateOf(m) {
    const others = this.audience(m);
    const readers = others.filter((id) => (this.memberReads[id] || 0) >= m.seq);
    const direct = this.conv.kind === "direct" || others.length === 1;
    let text;
    if (direct) text = readers.length ? t("tl.read") : t("tl.unread");
    else text = readers.length ? t("tl.readBy", { count: readers.length }) : t("tl.unread");
    return { state: readers.length ? "read" : "sent", text, readers, others, direct };
  }

  statusEl(m) {
    const s = this.stateOf(m);
    const attrs = {
      class: s.state === "read" ? "msg-status is-read" : "msg-status",
      testid: "msg-status",
      dataset: { seq: m.seq },
    };
    if (s.direct) return h("span", attrs, s.text);
    return h("button", { ...attrs, type: "button", on: { click: () => this.showReaders(m) } }, s.text);
  }

  showReaders(m) {
    const s = this.stateOf(m);
    const list = (ids) =>
      h(
        "ul",
        { class: "people" },
        ids.map((id) => h("li", { class: "person" }, avatar(this.members.get(id), id, "sm"), h("span", this.name(id)))),
      );
    const unread = s.others.filter((id) => !s.readers.includes(id));
    infoDialog(t("tl.readersTitle"), [
      h("h3", { class: "people-title" }, t("tl.readers", { count: s.readers.length })),
      list(s.readers),
      h("h3", { class: "people-title" }, t("tl.nonReaders", { count: unread.length })),
      list(unread),
    ]);
  }

  refreshStatuses() {
    for (const m of this.msgs) {
      if (m.sender !== this.me.id || m.kind === "system" || m.kind === "order_event" || m.kind === "call") continue;
      const node = this.nodes.get(m.seq);
      if (!node) continue;
      const s = this.stateOf(m);
      node.dataset.state = s.state;
      const old = node.querySelector("[data-testid='msg-status']");
      if (old) old.replaceWith(this.statusEl(m));
    }
  }

  renderSystem(m) {
    const meta = m.meta || {};
    const names = (ids) => (ids || []).map((id) => this.name(id)).join(t("tl.listSep"));
    let text = storedText(m);
    if (meta.event === "members_added" || meta.event === "member_removed" || meta.event === "member_left") {
      text = t(`tl.sys.${meta.event}`, { by: this.name(meta.by || m.sender), users: names(meta.users) });
    } else if (meta.event === "renamed") {
      text = t("grp.renamed", { by: this.name(meta.by || m.sender), title: meta.title || "" });
    }
    if (m.recalled) text = t("tl.recalledBy", { name: this.name(m.sender) });
    return h(
      "div",
      {
        class: ["msg", "msg-system", m.internal ? "msg-internal" : null],
        testid: "msg",
        dataset: {
          seq: m.seq,
          id: m.id,
          kind: m.kind,
          event: meta.event || null,
          recalled: m.recalled ? "true" : null,
        },
      },
      // A staff-only note (a consult's transfer note) says so, like a staff-only message.
      m.internal ? h("span", { class: "badge badge-internal" }, icon("lock"), t("tl.internal")) : null,
      h("span", { class: "msg-text", testid: "msg-text" }, text),
      h("time", { class: "msg-time", testid: "msg-time" }, fmtTime(m.ts)),
    );
  }

  renderEvent(m) {
    const meta = m.meta || {};
    const details = meta.details || {};
    if (m.recalled) {
      return h(
        "div",
        { class: "msg msg-system", testid: "msg", dataset: { seq: m.seq, id: m.id, kind: m.kind, recalled: "true" } },
        h("span", { class: "recalled-text" }, t("tl.recalledBy", { name: this.name(m.sender) })),
      );
    }
    const atts = (m.attachments || []).filter((a) => a && typeof a.id === "string");
    // Steps recorded before their photos became attachments only name them.
    const named = (details.photos || []).filter((p) => p && (typeof p === "string" || p.id)).length;
    const node = h(
      "div",
      {
        class: ["msg", "msg-event", m.internal ? "msg-internal" : null],
        testid: "msg",
        dataset: { seq: m.seq, id: m.id, kind: m.kind, event: meta.event || null },
      },
      h(
        "div",
        { class: "event-card" },
        h(
          "div",
          { class: "event-head" },
          h("span", { class: "event-icon" }, icon(meta.event === "status_changed" ? "truck" : "order")),
          h(
            "span",
            { class: "event-title" },
            meta.number ? `${meta.number} · ${t("tl.orderEvent")}` : t("tl.orderEvent"),
          ),
          m.internal ? h("span", { class: "badge badge-internal" }, icon("lock"), t("tl.internal")) : null,
          h("time", { class: "msg-time", testid: "msg-time" }, fmtTime(m.ts)),
        ),
        h("div", { class: "msg-text event-text", testid: "msg-text" }, pickText(meta.text, m.text)),
        details.note ? h("div", { class: "event-note" }, details.note) : null,
        atts.length
          ? h(
              "div",
              {
                class: "atts atts-grid event-atts",
                testid: "event-photos",
                role: "group",
                "aria-label": t("ph.stepPhotos"),
              },
              atts.map((a) => renderAttachment(a, "image")),
            )
          : null,
        !atts.length && named
          ? h("div", { class: "event-photos" }, icon("image"), t("tl.photos", { count: named }))
          : null,
        h(
          "div",
          { class: "event-by" },
          h("span", { class: "msg-sender", testid: "msg-sender" }, this.name(meta.by || m.sender)),
        ),
      ),
    );
    return node;
  }

  renderPending() {
    clear(this.pendingBox);
    const waiting = Boolean(this.realtime && this.realtime.state && this.realtime.state !== "online");
    for (const f of this.pending) {
      const kindLabel = { image: "kind.image", voice: "kind.voice", video: "kind.video", file: "kind.file" }[f.kind];
      this.pendingBox.appendChild(
        h(
          "div",
          {
            class: ["msg", "mine", "pending", f.urgent ? "msg-urgent" : null],
            testid: "msg",
            dataset: { ref: f.ref, state: "pending", kind: f.kind || "text", waiting: waiting ? "network" : "server" },
          },
          h(
            "div",
            { class: "msg-main" },
            h(
              "div",
              { class: "msg-meta" },
              h("span", { class: "msg-sender sr-only", testid: "msg-sender" }, this.name(this.me.id)),
            ),
            h(
              "div",
              { class: "msg-row" },
              h(
                "div",
                { class: "bubble" },
                kindLabel
                  ? h(
                      "div",
                      { class: "pending-att" },
                      icon(
                        f.kind === "voice"
                          ? "mic"
                          : f.kind === "image"
                            ? "image"
                            : f.kind === "video"
                              ? "video"
                              : "file",
                      ),
                      t(kindLabel),
                    )
                  : null,
                f.text
                  ? h(
                      "div",
                      { class: "msg-text", testid: "msg-text", dir: "auto" },
                      richText(f.text, f.mentions || [], this.members, this.me),
                    )
                  : null,
              ),
            ),
            h(
              "div",
              { class: "msg-foot" },
              h(
                "span",
                { class: "msg-status", testid: "msg-status" },
                icon(waiting ? "offline" : "clock"),
                t(waiting ? "wf.waitingNetwork" : "tl.pending"),
              ),
            ),
          ),
        ),
      );
    }
    this.emptyBox.hidden = this.msgs.length > 0 || this.pending.length > 0;
  }

  startTyping(user) {
    clearTimeout(this.typing.get(user));
    this.typing.set(
      user,
      setTimeout(() => this.stopTyping(user), 5000),
    );
    this.renderTyping();
  }

  stopTyping(user) {
    clearTimeout(this.typing.get(user));
    this.typing.delete(user);
    this.renderTyping();
  }

  renderTyping() {
    const names = Array.from(this.typing.keys()).map((id) => this.name(id));
    if (names.length === 0) {
      this.typingEl.textContent = "";
      this.typingEl.classList.remove("on");
      return;
    }
    this.typingEl.textContent =
      names.length === 1
        ? t("tl.typingOne", { name: names[0] })
        : t("tl.typingMany", { names: names.join(t("tl.listSep")) });
    this.typingEl.classList.add("on");
  }
}
