/**
 * Voice and video calls inside a conversation (docs/calls.md), for the staff workspace
 * and the customer page alike.
 *
 * The server carries only the signalling, over the page's one WebSocket: `call_*`
 * operations answered by the call's whole state (`call` frames), and `call_signal`
 * frames relayed between joined parties. Media goes from browser to browser
 * (ui/call-session.js: the call this page is in, its peers and its view).
 *
 * The manager draws the call buttons of a conversation's header, the incoming call
 * (while this user's party rings) and the prompt to rejoin a call this page dropped
 * out of, and hands the frames of the call this page is in to its session.
 */

import { clear, h } from "../dom.js";
import { t } from "../i18n.js";
import { api } from "../api.js";
import { newRef } from "../ref.js";
import { icon } from "./icons.js";
import { infoDialog } from "./dialogs.js";
import { avatar, onLang, toast } from "./util.js";
import { openLocalMedia, stopStream } from "./call-media.js";
import { audienceMenu } from "./call-people.js";
import { CallSession, GONE, endedNotice, partyOf, refusalText } from "./call-session.js";
import "./strings-calls.js";
import "./strings.js";

// Signals for a call this page is still joining wait this long for the join's answer.
const EARLY_SIGNALS_MS = 10000;

/**
 * Every call of one signed-in page: started from a conversation's header, rung in from
 * the server, and the one this page is in.
 */
export class CallManager {
  /**
   * @param {{realtime: object, me: object, nameOf: (id: string) => string,
   *          userOf?: (id: string) => (object|null), titleOf?: (convId: string) => (string|null),
   *          membersOf?: (convId: string) => (string[]|null), staff?: boolean}} options
   *   `nameOf` names a user as the page shows them; `titleOf` names a conversation;
   *   `membersOf` gives a conversation's member ids as the page knows them; `staff` is
   *   false on the customer's page (no staff-only calls, nobody else's customer to add).
   */
  constructor({ realtime, me, nameOf, userOf, titleOf, membersOf, staff = true }) {
    this.realtime = realtime;
    this.me = me;
    this.nameOf = nameOf;
    this.userOf = userOf || (() => null);
    this.titleOf = titleOf || (() => null);
    this.membersOf = membersOf || (() => null);
    this.staff = Boolean(staff);
    /** The latest state of every call this page heard of, by call id. */
    this.calls = new Map();
    /** The call this page is in (a CallSession), or null. */
    this.session = null;
    this.busy = false;
    this.early = new Map();
    /** Calls whose prompt this device already answered, with the party state it answered. */
    this.settled = new Map();
    this.buttonGroups = new Set();
    this.prompt = null;
    this.ring = null;
    /** The open "everyone or staff only" menu of a call button, or null. */
    this.menu = null;
    this.onFrame = (event) => this.handleFrame(event.detail);
    this.onWelcome = () => {
      if (this.session) this.session.rejoin();
    };
    this.onState = () => {
      if (this.session) this.session.renderStatus();
      this.refreshButtons();
    };
    this.onError = (event) => {
      const f = event.detail || {};
      // A refused signal answers nothing; it is worth a line for whoever debugs a call.
      if (f.code && this.session) console.warn("the server refused a call frame", f.code, f.message || "");
    };
    realtime.addEventListener("frame", this.onFrame);
    realtime.addEventListener("welcome", this.onWelcome);
    realtime.addEventListener("state", this.onState);
    realtime.addEventListener("error", this.onError);
    this.offLang = onLang(() => this.relabel());
  }

  /** Leave any call and stop listening (sign-out, leaving the page). */
  destroy() {
    this.realtime.removeEventListener("frame", this.onFrame);
    this.realtime.removeEventListener("welcome", this.onWelcome);
    this.realtime.removeEventListener("state", this.onState);
    this.realtime.removeEventListener("error", this.onError);
    this.offLang();
    this.closeMenu();
    if (this.session) this.session.hangup();
    this.closePrompt();
    this.buttonGroups.clear();
  }

  // ---- the header's buttons ---------------------------------------------------------

  /**
   * The voice and video call buttons for a conversation's header.
   * @param {{id: string}} conv
   * @param {{internal?: boolean, choice?: boolean}} [options] `internal`: the buttons
   *   start a staff-only call; `choice`: each button asks first whether to call everyone
   *   or the staff only (the staff's page, in an order conversation with a customer)
   * @returns {HTMLElement}
   */
  buttons(conv, { internal = false, choice = false } = {}) {
    const asks = choice && this.staff && !internal;
    const button = (media) => {
      const b = h(
        "button",
        {
          type: "button",
          class: "icon-btn call-start-btn",
          testid: `call-${media}`,
          dataset: { action: `call-${media}`, media },
          title: t(media === "video" ? "call.startVideo" : "call.startAudio"),
          "aria-label": t(media === "video" ? "call.startVideo" : "call.startAudio"),
          "aria-haspopup": asks ? "menu" : null,
          "aria-expanded": asks ? "false" : null,
          on: { click: () => (asks ? this.toggleMenu(conv, media, b) : this.start(conv, media, internal)) },
        },
        icon(media === "video" ? "video" : "phone"),
      );
      return b;
    };
    const group = h(
      "span",
      { class: "call-start", dataset: { conv: conv.id, choice: asks ? "true" : null } },
      button("audio"),
      button("video"),
    );
    // Old groups (a header drawn again) are forgotten once they leave the page.
    for (const old of this.buttonGroups) if (!old.isConnected) this.buttonGroups.delete(old);
    this.buttonGroups.add(group);
    this.refreshGroup(group);
    return group;
  }

  /** Open (or close again) the choice of everyone or staff only under a call button. */
  toggleMenu(conv, media, button) {
    const open = this.menu;
    this.closeMenu();
    if (open && open.button === button) return;
    if (this.session) {
      this.start(conv, media);
      return;
    }
    const menu = audienceMenu({
      button,
      media,
      choose: (internal) => this.start(conv, media, internal),
      onClose: () => {
        if (this.menu && this.menu.menu === menu) this.menu = null;
      },
    });
    this.menu = { button, menu };
  }

  closeMenu() {
    const open = this.menu;
    this.menu = null;
    if (open) open.menu.close();
  }

  refreshButtons() {
    for (const group of this.buttonGroups) {
      if (!group.isConnected) this.buttonGroups.delete(group);
      else this.refreshGroup(group);
    }
  }

  refreshGroup(group) {
    const inThisCall = this.session && this.session.conv === group.dataset.conv;
    group.classList.toggle("in-call", Boolean(inThisCall));
    for (const b of group.querySelectorAll("button")) {
      const label = t(b.dataset.media === "video" ? "call.startVideo" : "call.startAudio");
      b.disabled = this.busy;
      b.setAttribute("aria-label", label);
      // On plain HTTP the buttons say at once why a call cannot start here.
      b.title = window.isSecureContext ? label : `${label} · ${t("call.err.insecure")}`;
      b.classList.toggle("call-unavailable", !window.isSecureContext);
    }
  }

  // ---- starting and answering -----------------------------------------------------

  /**
   * Call everyone else in a conversation (docs/calls.md: `users` defaults to every
   * other member; a customer's call on an order rings the order's staff).
   * @param {{id: string}} conv
   * @param {"audio"|"video"} media
   * @param {boolean} [internal]
   */
  async start(conv, media, internal = false) {
    this.closeMenu();
    if (this.session) {
      this.session.show();
      if (this.session.conv !== conv.id) toast(t("call.inCall"));
      return;
    }
    if (this.busy) return;
    if (!this.realtime.connected()) {
      toast(t("call.offline"), "error");
      return;
    }
    this.setBusy(true);
    try {
      const local = await this.openMedia(media);
      if (!local) return;
      const frame = { op: "call_invite", ref: newRef(), conv: conv.id, media };
      if (internal) frame.internal = true;
      let answer;
      try {
        answer = await this.realtime.request(frame);
      } catch (err) {
        stopStream(local);
        toast(t("call.failed", { message: refusalText(err) }), "error");
        return;
      }
      this.begin(answer, local);
    } finally {
      this.setBusy(false);
    }
  }

  /** Answer a ringing call from this device. */
  async accept(callId) {
    const call = this.calls.get(callId);
    if (!call || this.busy) return;
    this.setBusy(true);
    this.renderPrompt();
    try {
      if (this.session) this.session.hangup();
      const local = await this.openMedia(call.media);
      if (!local) return;
      const still = partyOf(this.calls.get(callId), this.me.id);
      if (!still || still.state !== "ringing") {
        stopStream(local);
        return;
      }
      let answer;
      try {
        answer = await this.realtime.request({ op: "call_accept", ref: newRef(), call: callId });
      } catch (err) {
        stopStream(local);
        toast(t("call.acceptFailed", { message: refusalText(err) }), "error");
        return;
      }
      this.begin(answer, local);
    } finally {
      this.setBusy(false);
      this.syncPrompt();
    }
  }

  /** Decline a ringing call (every device of this user stops ringing). */
  decline(callId) {
    this.settled.set(callId, "ringing");
    this.closePrompt();
    this.realtime.request({ op: "call_decline", ref: newRef(), call: callId }).catch((err) => {
      console.warn("the decline was not sent", err);
    });
  }

  /** Back into a call this user is `away` from (this page was reloaded meanwhile). */
  async rejoinFromPrompt(callId) {
    const call = this.calls.get(callId);
    if (!call || this.busy || this.session) return;
    this.setBusy(true);
    this.renderPrompt();
    try {
      const local = await this.openMedia(call.media);
      if (!local) return;
      let answer;
      try {
        answer = await this.realtime.request({ op: "call_rejoin", ref: newRef(), call: callId });
      } catch (err) {
        stopStream(local);
        toast(t("call.rejoinFailed", { message: refusalText(err) }), "error");
        return;
      }
      this.begin(answer, local, { rejoin: true });
    } finally {
      this.setBusy(false);
      this.syncPrompt();
    }
  }

  leaveFromPrompt(callId) {
    this.settled.set(callId, "away");
    this.closePrompt();
    this.realtime.request({ op: "call_hangup", ref: newRef(), call: callId }).catch((err) => {
      console.warn("the hang-up was not sent", err);
    });
  }

  setBusy(busy) {
    this.busy = busy;
    this.refreshButtons();
  }

  /**
   * The microphone, and the camera for a video call (a video call goes on with sound
   * only when the camera is refused or missing).
   * @param {"audio"|"video"} media
   * @returns {Promise<MediaStream|null>} null when it could not (the reason is shown)
   */
  async openMedia(media) {
    const got = await openLocalMedia(media);
    if (got.problem) {
      this.deviceError(got.problem);
      return null;
    }
    if (got.cameraProblem) toast(t(got.cameraProblem), "error");
    return got.stream;
  }

  deviceError(key) {
    const dialog = infoDialog(t("call.err.title"), h("p", { class: "call-error", testid: "call-error" }, t(key)));
    dialog.classList.add("call-error-dialog");
    dialog.dataset.reason = key.replace("call.err.", "");
  }

  /** Start the call view from the answer to this page's own invite, accept or rejoin. */
  begin(answer, stream, { rejoin = false } = {}) {
    if (!answer || answer.op !== "call" || !answer.call) {
      stopStream(stream);
      return;
    }
    this.calls.set(answer.call, answer);
    const mine = partyOf(answer, this.me.id);
    if (answer.state === "ended" || !mine || GONE.has(mine.state)) {
      stopStream(stream);
      toast(t(answer.state === "ended" ? endedNotice(answer) : "call.ended"));
      return;
    }
    this.closePrompt();
    this.stopRinging();
    this.session = new CallSession(this, answer, stream);
    this.refreshButtons();
    this.session.join(answer, { restart: rejoin });
    const early = this.early.get(answer.call) || [];
    this.early.delete(answer.call);
    for (const f of early) this.session.onSignal(f);
  }

  /** The session is over (hung up, ended, left elsewhere). */
  sessionEnded(session) {
    if (this.session === session) this.session = null;
    this.refreshButtons();
    this.syncPrompt();
  }

  /**
   * A conversation's member ids, as the server has them now (who joined or left it
   * since the page loaded counts), else as the page knows them.
   * @param {string} convId
   * @returns {Promise<string[]>}
   */
  async conversationMembers(convId) {
    try {
      const conv = await api(`/api/conversations/${encodeURIComponent(convId)}`);
      if (conv && Array.isArray(conv.members)) return conv.members;
    } catch (err) {
      console.warn("the conversation's members were not loaded", err);
    }
    return this.membersOf(convId) || [];
  }

  // ---- frames from the server ---------------------------------------------------------

  handleFrame(f) {
    if (!f || typeof f !== "object") return;
    if (f.op === "call" && f.call) {
      const known = this.calls.get(f.call);
      // An older state arriving late (a backlog after a reconnect) never undoes a newer one.
      if (known && known.state === "ended" && f.state !== "ended") return;
      this.calls.set(f.call, f);
      // A ring declined or a call left here no longer prompts, until the server says
      // something else of this user (a ring again, from `call_add`).
      const mine = partyOf(f, this.me.id);
      if (this.settled.has(f.call) && (!mine || mine.state !== this.settled.get(f.call))) this.settled.delete(f.call);
      if (this.session && this.session.id === f.call) this.session.update(f);
      this.syncPrompt();
      if (f.state === "ended") this.forgetLater(f.call);
    } else if (f.op === "call_signal" && f.call) {
      if (this.session && this.session.id === f.call) this.session.onSignal(f);
      else this.keepEarly(f);
    }
  }

  keepEarly(f) {
    const list = this.early.get(f.call) || [];
    list.push(f);
    this.early.set(f.call, list);
    setTimeout(() => {
      if (this.early.get(f.call) === list) this.early.delete(f.call);
    }, EARLY_SIGNALS_MS);
  }

  forgetLater(callId) {
    setTimeout(() => {
      const call = this.calls.get(callId);
      if (call && call.state === "ended") this.calls.delete(callId);
    }, 60000);
  }

  // ---- the incoming call and the rejoin prompt ---------------------------------------

  /** Which call should prompt this user now: one ringing them, else one they are away from. */
  promptCall() {
    let ringing = null;
    let away = null;
    for (const call of this.calls.values()) {
      if (call.state === "ended") continue;
      if (this.session && this.session.id === call.call) continue;
      const mine = partyOf(call, this.me.id);
      if (!mine) continue;
      if (
        mine.state === "ringing" &&
        this.settled.get(call.call) !== "ringing" &&
        (!ringing || (call.started_ts || 0) > (ringing.started_ts || 0))
      )
        ringing = call;
      if (mine.state === "away" && !this.session && this.settled.get(call.call) !== "away") away = call;
    }
    if (ringing) return { call: ringing, kind: "ringing" };
    if (away) return { call: away, kind: "away" };
    return null;
  }

  syncPrompt() {
    const want = this.promptCall();
    if (!want) {
      this.closePrompt();
      return;
    }
    if (this.prompt && this.prompt.call === want.call.call && this.prompt.kind === want.kind) {
      this.renderPrompt();
      return;
    }
    this.closePrompt();
    this.prompt = { call: want.call.call, kind: want.kind, el: h("div", { class: "call-incoming-layer" }) };
    document.body.appendChild(this.prompt.el);
    this.renderPrompt();
    if (want.kind === "ringing") this.startRinging();
  }

  renderPrompt() {
    const p = this.prompt;
    if (!p) return;
    const call = this.calls.get(p.call);
    if (!call) return;
    const title = this.titleOf(call.conv);
    const ringing = p.kind === "ringing";
    const action = (name, label, cls, iconName, onClick) =>
      h(
        "button",
        {
          type: "button",
          class: ["btn", cls, "call-prompt-btn"],
          testid: `call-${name}`,
          dataset: { action: name },
          disabled: this.busy,
          on: { click: onClick },
        },
        icon(iconName),
        h("span", null, label),
      );
    const caller = call.caller || "";
    const card = h(
      "div",
      {
        class: ["call-incoming", ringing ? null : "call-rejoin"],
        testid: ringing ? "call-incoming" : "call-rejoin",
        role: "alertdialog",
        "aria-live": "assertive",
        dataset: {
          call: call.call,
          media: call.media,
          conv: call.conv,
          caller,
          internal: call.internal ? "true" : null,
        },
      },
      h("div", { class: "call-incoming-who" }, avatar(this.userOf(caller), caller, "lg")),
      h(
        "div",
        { class: "call-incoming-text" },
        h(
          "p",
          { class: "call-incoming-title" },
          ringing
            ? t(call.media === "video" ? "call.incoming.video" : "call.incoming.audio", { name: this.nameOf(caller) })
            : t("call.away.title", { title: title || t(`call.kind.${call.media === "video" ? "video" : "audio"}`) }),
        ),
        ringing && title ? h("p", { class: "call-incoming-where" }, t("call.incoming.where", { title })) : null,
        call.internal
          ? h(
              "p",
              { class: "call-incoming-where call-internal", testid: "call-internal" },
              icon("lock"),
              t("call.internal"),
            )
          : null,
        ringing ? null : h("p", { class: "call-incoming-where" }, t("call.away.text")),
        this.busy ? h("p", { class: "call-incoming-where", role: "status" }, t("call.joining")) : null,
      ),
      h(
        "div",
        { class: "call-incoming-actions" },
        ringing
          ? [
              action("decline", t("call.decline"), "btn-danger", "hangup", () => this.decline(call.call)),
              action("accept", t("call.accept"), "btn-accept", call.media === "video" ? "video" : "phone", () =>
                this.accept(call.call),
              ),
            ]
          : [
              action("leave", t("call.leave"), "btn-danger", "hangup", () => this.leaveFromPrompt(call.call)),
              action("rejoin", t("call.rejoin"), "btn-accept", "phone", () => this.rejoinFromPrompt(call.call)),
            ],
      ),
    );
    clear(p.el).append(card);
  }

  closePrompt() {
    this.stopRinging();
    if (!this.prompt) return;
    this.prompt.el.remove();
    this.prompt = null;
  }

  /**
   * A soft two-tone ring while a call rings this device. Only after the person has
   * used the page: a browser refuses sound before that, and says so in its console.
   */
  startRinging() {
    if (this.ring) return;
    const activation = navigator.userActivation;
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx || !activation || !activation.hasBeenActive) return;
    try {
      const ctx = new Ctx();
      const gain = ctx.createGain();
      gain.gain.value = 0;
      gain.connect(ctx.destination);
      const tone = (freq) => {
        const osc = ctx.createOscillator();
        osc.frequency.value = freq;
        osc.connect(gain);
        osc.start();
        return osc;
      };
      const oscs = [tone(440), tone(480)];
      let on = false;
      const timer = setInterval(() => {
        on = !on;
        gain.gain.setTargetAtTime(on ? 0.06 : 0, ctx.currentTime, 0.02);
      }, 1000);
      this.ring = { ctx, oscs, timer };
    } catch (err) {
      console.warn("no ring tone", err);
    }
  }

  stopRinging() {
    const ring = this.ring;
    if (!ring) return;
    this.ring = null;
    clearInterval(ring.timer);
    for (const osc of ring.oscs) osc.stop();
    ring.ctx.close().catch(() => {});
  }

  relabel() {
    this.closeMenu();
    this.refreshButtons();
    this.renderPrompt();
    if (this.session) this.session.relabel();
  }
}
