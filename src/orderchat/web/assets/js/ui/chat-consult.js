/**
 * One consult on the visitor's page: where it stands (waiting in the queue and at which
 * place, who is helping, closed), the conversation with the shop (the shared timeline
 * and composer) and a polite notice when the shop refuses the visitor's messages.
 *
 * While the consult waits in the queue its place is read again every little while;
 * the consult's own system messages (`meta.consult`) update it at once.
 */

import { clear, h } from "../dom.js";
import { t } from "../i18n.js";
import { api, errorText } from "../api.js";
import { fmtDateTime } from "../format.js";
import { icon } from "./icons.js";
import { Timeline } from "./timeline.js";
import { Composer } from "./composer.js";
import "./strings-chat.js";

const QUEUE_POLL_MS = 10000;
// An unverified visitor sends pictures and voice only (docs/consults.md §6).
const VISITOR_FILES = "image/*,audio/*";

/**
 * The consult's conversation id: the consult carries it, or is named by it.
 * @param {object} consult
 * @returns {string}
 */
export function consultConv(consult) {
  return consult.conv || consult.conversation || consult.id;
}

/** Whether a failure is the shop's block on this visitor. */
export function isBlock(err) {
  return Boolean(err) && (/block/i.test(String(err.reason || "")) || err.code === "blocked");
}

/** Whether a failure refuses this visitor's message (a block, a file they may not send). */
export function isRefusal(err) {
  return isBlock(err) || (Boolean(err) && (err.code === "forbidden" || err.status === 403));
}

/** The shop's people as a visitor reads them: by the name the consult gives, else "the shop". */
class ShopNames extends Map {
  get(id) {
    return super.get(id) || { id, username: "", display_name: t("ch.shop"), roles: [], kind: "staff" };
  }
}

export class ConsultChat {
  /**
   * @param {{consult: object, conv: object, me: object, realtime: object, embed?: boolean,
   *          verified?: boolean, onBack: () => void, extra?: () => (Node|null)}} options
   *   `verified`: an order vouches for the visitor, who may then send any file.
   *   `extra` builds the header's further tools (continue on another device).
   */
  constructor({ consult, conv, me, realtime, embed, verified, onBack, extra }) {
    this.consult = consult;
    this.conv = conv;
    this.me = me;
    this.realtime = realtime;
    this.embed = Boolean(embed);
    this.extra = extra || (() => null);
    this.pollTimer = null;
    this.destroyed = false;
    this.members = new ShopNames([[me.id, me]]);
    this.noteAssignee();

    this.back = h(
      "button",
      { type: "button", class: "btn btn-small chat-back", testid: "consult-back", on: { click: onBack } },
      icon("back"),
      h("span", null, t("ch.back")),
    );
    this.statusEl = h("span", { class: "chat-status", testid: "consult-status" });
    this.lineEl = h("p", { class: "chat-line", role: "status", "aria-live": "polite" });
    this.toolsEl = h("div", { class: "chat-tools" });
    this.blockedEl = h("div", { class: "chat-blocked", testid: "consult-blocked", role: "alert", hidden: true });
    this.closedEl = h("p", { class: "chat-closed-hint", hidden: true });
    this.body = h("div", { class: "c-chat-body chat-body-box" });
    this.el = h(
      "section",
      { class: "chat-consult", testid: "consult-view", dataset: { consultId: consult.id } },
      h(
        "div",
        { class: "chat-head" },
        h("div", { class: "chat-head-row" }, this.back, this.statusEl, this.toolsEl),
        this.lineEl,
      ),
      this.body,
    );

    this.timeline = new Timeline({
      me,
      members: this.members,
      conv,
      realtime,
      onReply: (message) => this.composer && this.composer.setReply(message),
      canRecall: (message) => message.sender === me.id && message.kind === "text",
    });
    this.composer = new Composer({
      conv,
      realtime,
      members: new Map([[me.id, me]]),
      roles: [],
      me,
      accept: verified ? null : VISITOR_FILES,
      onError: (err) => this.refused(err),
    });
    this.composer.attachDropTarget(this.timeline.el);
    this.body.append(this.timeline.el, this.closedEl, this.blockedEl, this.composer.el);
    this.render();
  }

  /** Attached first, so the list can scroll to the newest message. */
  mount(messages) {
    this.timeline.setMessages(messages);
    this.showPending();
  }

  showPending() {
    if (this.realtime) this.timeline.showPending(this.realtime.pending().filter((f) => f.conv === this.conv.id));
  }

  applyFrame(frame) {
    if (frame.op === "member" && frame.conversation) this.conv = { ...this.conv, members: frame.conversation.members };
    if (frame.op === "message") this.timeline.add(frame);
    else this.timeline.applyFrame(frame);
  }

  /** A newer view of the consult (its system message, or a poll while queued). */
  update(consult) {
    this.consult = { ...this.consult, ...consult };
    this.noteAssignee();
    this.render();
    // Waiting again (a closed consult written into) without its place: ask for it now.
    if (this.consult.status === "queued" && !this.consult.position && !("position" in consult)) this.poll();
  }

  noteAssignee() {
    const a = this.consult.assignee;
    if (a && a.id) this.members.set(a.id, { id: a.id, username: "", display_name: a.display_name, kind: "staff" });
  }

  /**
   * A send or upload the server refused; an error frame heard on the connection. A
   * block (or another refusal to let this visitor write) stays on screen, in the
   * server's words.
   */
  refused(err) {
    if (!isRefusal(err)) return;
    if (err.conv && err.conv !== this.conv.id) return;
    this.blockedEl.dataset.reason = err.reason || err.code || "";
    clear(this.blockedEl).append(
      icon("alert"),
      h(
        "div",
        null,
        h("strong", null, t("ch.blocked.title")),
        h("p", { testid: "consult-blocked-message" }, errorText(err)),
      ),
    );
    this.blockedEl.hidden = false;
  }

  relabel() {
    clear(this.back).append(icon("back"), h("span", null, t("ch.back")));
    this.render();
  }

  render() {
    const consult = this.consult;
    const status = consult.status || "open";
    this.el.dataset.status = status;
    this.statusEl.dataset.status = status;
    this.statusEl.textContent = t(`ch.status.${status}`) === `ch.status.${status}` ? status : t(`ch.status.${status}`);
    clear(this.lineEl);
    this.lineEl.hidden = false;
    if (status === "queued") {
      const n = Number(consult.position);
      this.lineEl.append(
        h(
          "span",
          {
            class: "chat-queue",
            testid: "consult-queue",
            dataset: { position: Number.isInteger(n) && n > 0 ? n : null },
          },
          icon("clock"),
          Number.isInteger(n) && n > 0 ? t("ch.queue.position", { n }) : t("ch.queue.waiting"),
        ),
      );
    } else if (status === "open") {
      const name = consult.assignee && consult.assignee.display_name;
      this.lineEl.append(
        h(
          "span",
          { class: "chat-agent", testid: "consult-agent" },
          icon("user"),
          name ? t("ch.agent", { name }) : t("ch.agentAny"),
        ),
      );
    } else if (status === "closed") {
      this.lineEl.append(
        h(
          "span",
          { class: "chat-closed" },
          consult.closed_ts ? t("ch.closedAt", { time: fmtDateTime(consult.closed_ts) }) : t("ch.status.closed"),
        ),
      );
    } else {
      this.lineEl.hidden = true;
    }
    const order = consult.order;
    if (order && order.id) {
      this.lineEl.hidden = false;
      this.lineEl.append(
        h(
          "a",
          {
            class: "chat-order-link",
            testid: "consult-order-link",
            href: `/c?order=${encodeURIComponent(order.id)}`,
            // The order page cannot be framed: from the widget it opens in a tab of its own.
            target: this.embed ? "_blank" : null,
            rel: this.embed ? "noopener" : null,
          },
          icon("order"),
          t("ch.ordered", { number: order.number || "" }),
        ),
      );
    }
    this.closedEl.hidden = status !== "closed";
    this.closedEl.textContent = t("ch.closedHint");
    clear(this.toolsEl);
    const extra = this.extra();
    if (extra) this.toolsEl.append(extra);
    this.schedulePoll();
  }

  /** Read the queue place again while the consult waits; stop once someone has it. */
  schedulePoll() {
    const queued = this.consult.status === "queued";
    if (queued && !this.pollTimer && !this.destroyed) {
      this.pollTimer = setInterval(() => this.poll(), QUEUE_POLL_MS);
    } else if (!queued && this.pollTimer) {
      clearInterval(this.pollTimer);
      this.pollTimer = null;
    }
  }

  async poll() {
    if (this.destroyed || document.visibilityState === "hidden") return;
    try {
      const fresh = await api(`/api/consults/${encodeURIComponent(this.consult.id)}`);
      if (!this.destroyed && fresh) this.update(fresh);
    } catch (err) {
      console.warn("the queue place was not read", err);
    }
  }

  destroy() {
    this.destroyed = true;
    clearInterval(this.pollTimer);
    this.pollTimer = null;
    this.timeline.destroy();
    this.composer.destroy();
  }
}
