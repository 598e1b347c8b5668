/**
 * The one WebSocket a page keeps to the server (docs/protocol.md §5–§8, §13, §16).
 *
 * It says hello with the stored cursor, resumes after every drop, and keeps every
 * unacknowledged `send` in an outbox that survives reloads, resending it with the same
 * `ref` until the server acknowledges it; the server stores a `ref` only once, so a
 * message is never lost and never doubled. Deduplicating messages by (conv, seq) is the
 * consumer's job, because history pages, the backlog and live events overlap.
 */

import { getSession } from "./session.js";
import { getLang } from "./i18n.js";
import { newRef } from "./ref.js";

const PING_MS = 25000;
// Nothing heard for this long (pongs included) means the connection is dead.
const SILENCE_MS = 70000;
// The server closes after 10 s without a successful hello; give up a little later.
const HELLO_TIMEOUT_MS = 12000;
const WATCH_MS = 5000;
// While a send or an operation waits for its answer, silence is not given 70 s: the
// connection is probed this often, and a probe unanswered by the deadline means the
// network is gone, so the header and the pending messages say so within seconds.
const PROBE_MS = 1000;
const PONG_DEADLINE_MS = 3000;
// Under the server's 1 MiB frame limit even when every character takes several bytes.
const MAX_FRAME_CHARS = 256 * 1024;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 5000;
// `rate_limited` and `internal` are worth retrying with the same ref (§16.7).
const RETRYABLE = new Set(["rate_limited", "internal"]);

function readJson(key, fallback) {
  try {
    const raw = localStorage.getItem(key);
    return raw === null ? fallback : JSON.parse(raw);
  } catch {
    return fallback;
  }
}

function writeJson(key, value) {
  try {
    if (value === null || value === undefined) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(value));
  } catch (err) {
    console.warn("could not write", key, err);
  }
}

/**
 * Real-time connection. Events (CustomEvent, payload in `.detail`):
 * `state` (the new state), `welcome` (the welcome frame), `synced` (the synced frame),
 * `frame` (every message/recalled/read/member/order/media/typing frame),
 * `reset` (the cursor was refused: reload state over HTTP), `signedout` (4001, or the
 * token was refused), `outbox` (the list of pending sends), `error` (an error frame that
 * answers no pending request, such as a refused `read`).
 */
export class Realtime extends EventTarget {
  /**
   * @param {{getToken?: () => (string|null), device?: string, getUserId?: () => (string|null)}} options
   *   `getToken` is asked at every connect, so a new sign-in is picked up;
   *   `getUserId` names whose cursor and outbox to use (defaults to the stored session's user).
   */
  constructor({ getToken, device, getUserId } = {}) {
    super();
    this._getToken = getToken || (() => (getSession() ? getSession().token : null));
    this._getUserId = getUserId || (() => (getSession() ? getSession().user.id : null));
    this.device = (device || "web").slice(0, 64);
    /** @type {"connecting"|"online"|"offline"} */
    this.state = "offline";
    /** The signed-in user, from the last welcome. */
    this.user = null;
    /** Whether the last welcome resumed from a cursor (a backlog and `synced` follow). */
    this.resumed = false;
    this._ws = null;
    this._running = false;
    this._welcomed = false;
    this._attempt = 0;
    this._retryTimer = null;
    this._pingTimer = null;
    this._watchTimer = null;
    this._openedAt = 0;
    this._lastHeard = 0;
    this._userId = null;
    this._cursor = null;
    this._outbox = [];
    this._waiters = new Map();
    this._retrySends = new Map();
    this._queuedOps = [];
    this._inflightOps = new Map();
    this._requests = new Map();
    this._probeTimer = null;
    this._pongDue = 0;
    this._onOnline = () => {
      this._attempt = 0;
      // The same state, said differently: no longer "no network" but "reconnecting".
      this._emit("state", this.state);
      this._wake();
    };
    // The browser knows first that the network went away: trust it at once, instead of
    // waiting for a socket that will never answer.
    this._onOffline = () => {
      if (this._ws) this._abandon(this._ws, 4000);
      else this._setState("offline");
      this._emit("state", this.state);
    };
    this._onVisible = () => {
      if (document.visibilityState !== "visible") return;
      if (this._welcomed) this._raw({ op: "ping" });
      else this._wake();
    };
    // Pending sends from earlier visits can be drawn before the connection opens.
    this._ensureUser(this._getUserId());
  }

  /** Open the connection and keep it open until `stop()` or a sign-out. */
  start() {
    if (this._running) return;
    this._running = true;
    this._ensureUser(this._getUserId());
    window.addEventListener("online", this._onOnline);
    window.addEventListener("offline", this._onOffline);
    document.addEventListener("visibilitychange", this._onVisible);
    this._connect();
  }

  /** Close the connection for good (sign-out, leaving the page). The outbox is kept. */
  stop() {
    this._running = false;
    window.removeEventListener("online", this._onOnline);
    window.removeEventListener("offline", this._onOffline);
    document.removeEventListener("visibilitychange", this._onVisible);
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    for (const timer of this._retrySends.values()) clearTimeout(timer);
    this._retrySends.clear();
    if (this._ws) this._abandon(this._ws, 1000);
    this._setState("offline");
  }

  /**
   * Forget this user's stored cursor and outbox, for a deliberate sign-out on a shared
   * computer. Pending sends are dropped and their promises rejected.
   */
  forgetLocalState() {
    const userId = this._userId || this._getUserId();
    if (!userId) return;
    writeJson(`orderchat.cursor.${userId}`, null);
    writeJson(`orderchat.outbox.${userId}`, null);
    this._cursor = null;
    const dropped = this._outbox;
    this._outbox = [];
    for (const frame of dropped)
      this._settle(frame.ref, null, { op: "error", code: "cancelled", message: "signed out", ref: frame.ref });
    this._emit("outbox", []);
  }

  /**
   * Send a message. It goes into the persistent outbox at once (so the view can show it
   * as pending, and a reload does not lose it) and is resent with the same `ref` after
   * every reconnect until the server acknowledges it.
   * @param {object} frame a `send` frame without `op`/`ref` or with them
   * @returns {Promise<object>} the ack (`{ref, conv, seq, id, ts}`); rejects with the error frame
   */
  send(frame) {
    const f = { ...frame, op: "send" };
    if (!f.ref) f.ref = newRef();
    // The server closes the connection on a frame over 1 MiB; resending it would loop.
    if (JSON.stringify(f).length > MAX_FRAME_CHARS) {
      return Promise.reject({ op: "error", code: "too_large", message: "the message is too large", ref: f.ref });
    }
    this._ensureUser(this._getUserId());
    return new Promise((resolve, reject) => {
      this._waiters.set(f.ref, { resolve, reject });
      if (!this._outbox.some((x) => x.ref === f.ref)) {
        this._outbox.push(f);
        this._persistAdd(f);
        this._emit("outbox", this.pending());
      }
      if (this._welcomed) {
        this._raw(f);
        this._probeSoon();
      }
    });
  }

  /**
   * Any other operation. `read` and `recall` wait for the connection (a recall is resent
   * after a drop until answered; recalling twice is harmless); `typing` is dropped when
   * offline, since it is stale by the time the connection is back.
   * @param {object} frame e.g. `{op: "read", conv, seq}`, `{op: "recall", conv, seq}`
   * @returns {Promise<object|undefined>} the ack when the op has a `ref` (recall gets one
   *   if missing), otherwise resolves once sent; rejects with the error frame
   */
  op(frame) {
    const f = { ...frame };
    if (f.op === "send") return this.send(f);
    if (f.op === "recall" && !f.ref) f.ref = newRef();
    if (f.op === "typing" || f.op === "ping") {
      if (this._welcomed) this._raw(f);
      return Promise.resolve(undefined);
    }
    return new Promise((resolve, reject) => {
      const entry = { frame: f, resolve, reject };
      if (this._welcomed) {
        this._dispatchOp(entry);
        return;
      }
      if (f.op === "read") {
        // Only the highest mark per conversation matters.
        this._queuedOps = this._queuedOps.filter((queued) => {
          const q = queued.frame;
          if (q.op === "read" && q.conv === f.conv && q.seq <= f.seq) {
            queued.resolve(undefined);
            return false;
          }
          return true;
        });
      }
      this._queuedOps.push(entry);
    });
  }

  /**
   * A live operation (a call's invite, accept, hangup…): sent only while connected and
   * never resent after a drop, because it means something only now. It is answered by
   * whatever frame carries its `ref` first, an ack or an event (a call's state), or by
   * an error.
   * @param {object} frame an operation frame; a `ref` is added when missing
   * @param {{timeoutMs?: number}} [options]
   * @returns {Promise<object>} the answering frame; rejects with an error frame (`offline`
   *   when not connected or the connection dropped, `timeout` when nothing answered)
   */
  request(frame, { timeoutMs = 10000 } = {}) {
    const f = { ...frame };
    if (!f.ref) f.ref = newRef();
    const fail = (code, message) => ({ op: "error", code, message, ref: f.ref });
    if (!this._welcomed || !this._raw(f)) return Promise.reject(fail("offline", "not connected"));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._requests.delete(f.ref);
        reject(fail("timeout", "no answer"));
      }, timeoutMs);
      this._requests.set(f.ref, { resolve, reject, timer, fail });
    });
  }

  /**
   * Send a frame that is worth nothing later (a call's signalling, its media state):
   * at once while connected, otherwise not at all.
   * @param {object} frame
   * @returns {boolean} whether it went out
   */
  live(frame) {
    return this._welcomed ? this._raw(frame) : false;
  }

  /**
   * Whether the connection is up and greeted, so operations go out at once.
   * @returns {boolean}
   */
  connected() {
    return this._welcomed;
  }

  /**
   * The sends not yet acknowledged, oldest first, for drawing pending bubbles.
   * @returns {object[]} copies of the `send` frames
   */
  pending() {
    return this._outbox.map((f) => ({ ...f }));
  }

  /**
   * Whether the browser says there is no network at all (its `offline` state); the
   * connection then waits for the `online` event instead of retrying.
   * @returns {boolean}
   */
  networkDown() {
    return typeof navigator !== "undefined" && navigator.onLine === false;
  }

  // --- connection ---------------------------------------------------------------

  _connect() {
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    if (!this._running || this._ws) return;
    const token = this._getToken();
    if (!token) {
      this._signedOut();
      return;
    }
    this._ensureUser(this._getUserId());
    if (this.networkDown()) {
      // The `online` event wakes the connection; a slow retry covers a browser whose
      // idea of the network is wrong.
      this._setState("offline");
      this._retryTimer = setTimeout(() => this._connect(), BACKOFF_MAX_MS * 2);
      return;
    }
    this._setState("connecting");
    const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (err) {
      console.warn("could not open the connection", err);
      this._scheduleReconnect(false);
      return;
    }
    this._ws = ws;
    this._welcomed = false;
    this._openedAt = Date.now();
    this._lastHeard = Date.now();
    ws.onopen = () => {
      this._raw({ op: "hello", token, device: this.device, cursor: this._cursor || null, language: getLang() });
    };
    ws.onmessage = (event) => this._onMessage(ws, event);
    ws.onclose = (event) => this._onClose(ws, event.code);
    ws.onerror = () => {};
    clearInterval(this._watchTimer);
    this._watchTimer = setInterval(() => this._watch(ws), WATCH_MS);
  }

  _watch(ws) {
    if (ws !== this._ws) return;
    const now = Date.now();
    if (!this._welcomed && now - this._openedAt > HELLO_TIMEOUT_MS) this._abandon(ws, 4000);
    else if (this._welcomed && now - this._lastHeard > SILENCE_MS) this._abandon(ws, 4000);
  }

  /** Stop listening to a socket and treat it as closed now, without waiting for the close handshake. */
  _abandon(ws, code) {
    ws.onopen = null;
    ws.onmessage = null;
    ws.onclose = null;
    ws.onerror = null;
    try {
      ws.close(code === 1000 ? 1000 : 4000);
    } catch {
      // Already closed.
    }
    this._onClose(ws, code === 1000 ? 1000 : 1006);
  }

  _onClose(ws, code) {
    if (ws !== this._ws) return;
    this._ws = null;
    this._welcomed = false;
    clearInterval(this._pingTimer);
    clearInterval(this._watchTimer);
    this._pingTimer = null;
    this._watchTimer = null;
    this._stopProbe();
    this._dropRequests();
    if (code === 4001) {
      this._signedOut();
      return;
    }
    this._setState("offline");
    if (this._running) this._scheduleReconnect(code === 4008);
  }

  _scheduleReconnect(immediate) {
    clearTimeout(this._retryTimer);
    let wait = 0;
    if (!immediate) {
      const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this._attempt);
      wait = base / 2 + Math.random() * (base / 2);
    }
    this._attempt += 1;
    this._retryTimer = setTimeout(() => this._connect(), wait);
  }

  _wake() {
    if (!this._running || this._ws) return;
    this._connect();
  }

  _signedOut() {
    this._running = false;
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    if (this._ws) {
      const ws = this._ws;
      this._ws = null;
      ws.onclose = null;
      try {
        ws.close(1000);
      } catch {
        // Already closed.
      }
    }
    this._welcomed = false;
    this._dropRequests();
    this._setState("offline");
    this._emit("signedout", null);
  }

  _raw(frame) {
    const ws = this._ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    try {
      ws.send(JSON.stringify(frame));
      return true;
    } catch (err) {
      console.warn("could not send a frame", err);
      return false;
    }
  }

  // --- incoming -----------------------------------------------------------------

  _onMessage(ws, event) {
    if (ws !== this._ws) return;
    this._lastHeard = Date.now();
    // Anything heard proves the connection alive, a pong or not.
    this._pongDue = 0;
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      console.warn("the server sent a frame that is not JSON");
      return;
    }
    if (!frame || typeof frame.op !== "string") return;
    switch (frame.op) {
      case "welcome":
        this._onWelcome(frame);
        break;
      case "synced":
        this._saveCursor(frame.cursor);
        this._emit("synced", frame);
        break;
      case "ack":
        this._onAck(frame);
        break;
      case "error":
        this._onError(frame);
        break;
      case "pong":
        break;
      default:
        this._onEvent(frame);
    }
  }

  _onWelcome(frame) {
    const userId = frame.user && frame.user.id;
    if (userId && this._userId && userId !== this._userId) {
      // The session now belongs to someone else: their cursor and outbox apply.
      this._ensureUser(userId);
      this._abandon(this._ws, 4000);
      return;
    }
    this._ensureUser(userId || this._userId);
    this._welcomed = true;
    this._attempt = 0;
    this.user = frame.user || null;
    this.resumed = Boolean(this._cursor);
    if (!this._cursor) this._saveCursor(frame.cursor);
    clearInterval(this._pingTimer);
    this._pingTimer = setInterval(() => this._raw({ op: "ping" }), PING_MS);
    this._setState("online");
    this._emit("welcome", frame);
    for (const f of this._outbox) this._raw(f);
    for (const entry of this._inflightOps.values()) this._raw(entry.frame);
    const queued = this._queuedOps;
    this._queuedOps = [];
    for (const entry of queued) this._dispatchOp(entry);
    this._probeSoon();
  }

  /** Probe the connection quickly for as long as something waits for the server's answer. */
  _probeSoon() {
    if (this._probeTimer || !this._welcomed) return;
    if (!this._outbox.length && !this._inflightOps.size) return;
    this._probeTimer = setInterval(() => this._probe(), PROBE_MS);
  }

  _probe() {
    const ws = this._ws;
    if (!ws || !this._welcomed || (!this._outbox.length && !this._inflightOps.size)) {
      this._stopProbe();
      return;
    }
    const now = Date.now();
    if (this._pongDue) {
      if (now > this._pongDue) this._abandon(ws, 4000);
      return;
    }
    if (this._raw({ op: "ping" })) this._pongDue = now + PONG_DEADLINE_MS;
  }

  _stopProbe() {
    clearInterval(this._probeTimer);
    this._probeTimer = null;
    this._pongDue = 0;
  }

  _onAck(frame) {
    if (!frame.ref) return;
    if (this._answerRequest(frame.ref, frame, null)) return;
    if (this._inflightOps.has(frame.ref)) {
      const entry = this._inflightOps.get(frame.ref);
      this._inflightOps.delete(frame.ref);
      entry.resolve(frame);
      return;
    }
    this._settle(frame.ref, frame, null);
  }

  _onError(frame) {
    if (frame.code === "cursor_expired") {
      this._forgetCursor();
      this._emit("reset", frame);
      // The same connection takes a new hello within its hello window.
      const token = this._getToken();
      if (token) this._raw({ op: "hello", token, device: this.device, cursor: null, language: getLang() });
      return;
    }
    if (frame.code === "unauthorized" && !this._welcomed) {
      this._signedOut();
      return;
    }
    const ref = frame.ref;
    if (this._answerRequest(ref, null, frame)) return;
    if (ref && this._outbox.some((f) => f.ref === ref)) {
      if (RETRYABLE.has(frame.code)) {
        this._retryLater(ref);
        return;
      }
      this._settle(ref, null, frame);
      return;
    }
    if (ref && this._inflightOps.has(ref)) {
      const entry = this._inflightOps.get(ref);
      this._inflightOps.delete(ref);
      entry.reject(frame);
      return;
    }
    this._emit("error", frame);
  }

  _onEvent(frame) {
    this._emit("frame", frame);
    // A live request answered by an event (a call's state carries the operation's ref).
    if (frame.ref && frame.op !== "message") this._answerRequest(frame.ref, frame, null);
    // The sender's own message event may come before the ack; either one settles the send.
    if (frame.op === "message" && frame.ref && frame.sender === this._userId) {
      this._settle(
        frame.ref,
        { op: "ack", ref: frame.ref, conv: frame.conv, seq: frame.seq, id: frame.id, ts: frame.ts },
        null,
      );
    }
    // A private query (`/stock`) stores nothing and gets no ack: its reply settles the send.
    if (frame.op === "command_reply" && frame.ref) this._settle(frame.ref, frame, null);
    // Saved only after the listeners processed the event (§16.4).
    if (frame.cursor) this._saveCursor(frame.cursor);
  }

  /** Answer a live request (see `request`); false when no request has this ref. */
  _answerRequest(ref, frame, error) {
    const entry = ref ? this._requests.get(ref) : null;
    if (!entry) return false;
    this._requests.delete(ref);
    clearTimeout(entry.timer);
    if (error) entry.reject(error);
    else entry.resolve(frame);
    return true;
  }

  _dropRequests() {
    const entries = [...this._requests.values()];
    this._requests.clear();
    for (const entry of entries) {
      clearTimeout(entry.timer);
      entry.reject(entry.fail("offline", "the connection dropped"));
    }
  }

  _retryLater(ref) {
    if (this._retrySends.has(ref)) return;
    const timer = setTimeout(
      () => {
        this._retrySends.delete(ref);
        const f = this._outbox.find((x) => x.ref === ref);
        if (f && this._welcomed) this._raw(f);
      },
      1000 + Math.random() * 2000,
    );
    this._retrySends.set(ref, timer);
  }

  /** Finish a send: take it out of the outbox and resolve or reject its promise. */
  _settle(ref, ack, error) {
    const index = this._outbox.findIndex((f) => f.ref === ref);
    const waiter = this._waiters.get(ref);
    this._waiters.delete(ref);
    if (index >= 0) {
      this._outbox.splice(index, 1);
      this._persistRemove(ref);
      this._emit("outbox", this.pending());
    }
    if (waiter) {
      if (error) waiter.reject(error);
      else waiter.resolve(ack);
    }
  }

  _dispatchOp(entry) {
    if (!this._raw(entry.frame)) {
      this._queuedOps.push(entry);
      return;
    }
    if (entry.frame.ref) {
      this._inflightOps.set(entry.frame.ref, entry);
      this._probeSoon();
    } else entry.resolve(undefined);
  }

  // --- stored state -------------------------------------------------------------

  /**
   * Switch to a user's stored cursor and outbox. The cursor read from storage is used
   * only for the first connection; afterwards this page's own cursor is authoritative,
   * so another tab saving a later cursor can never make this one skip events.
   */
  _ensureUser(userId) {
    if (!userId || userId === this._userId) return;
    // Sends made before any user was known belong to this one; another user's never do.
    const mine = this._userId === null ? this._outbox : [];
    this._userId = userId;
    const cursor = readJson(`orderchat.cursor.${userId}`, null);
    this._cursor = typeof cursor === "string" ? cursor : null;
    const stored = readJson(`orderchat.outbox.${userId}`, []);
    this._outbox = Array.isArray(stored) ? stored.filter((f) => f && f.op === "send" && f.ref) : [];
    for (const f of mine) {
      if (!this._outbox.some((x) => x.ref === f.ref)) {
        this._outbox.push(f);
        this._persistAdd(f);
      }
    }
    this._emit("outbox", this.pending());
  }

  _saveCursor(cursor) {
    if (typeof cursor !== "string" || !cursor) return;
    this._cursor = cursor;
    if (this._userId) writeJson(`orderchat.cursor.${this._userId}`, cursor);
  }

  _forgetCursor() {
    this._cursor = null;
    if (this._userId) writeJson(`orderchat.cursor.${this._userId}`, null);
  }

  // Read-modify-write, so that two tabs of the same user never drop each other's sends.
  _persistAdd(frame) {
    if (!this._userId) return;
    const key = `orderchat.outbox.${this._userId}`;
    const list = readJson(key, []);
    const items = Array.isArray(list) ? list : [];
    if (!items.some((f) => f && f.ref === frame.ref)) items.push(frame);
    writeJson(key, items);
  }

  _persistRemove(ref) {
    if (!this._userId) return;
    const key = `orderchat.outbox.${this._userId}`;
    const list = readJson(key, []);
    const items = (Array.isArray(list) ? list : []).filter((f) => f && f.ref !== ref);
    writeJson(key, items.length ? items : null);
  }

  _setState(state) {
    if (state === this.state) return;
    this.state = state;
    this._emit("state", state);
  }

  _emit(type, detail) {
    try {
      this.dispatchEvent(new CustomEvent(type, { detail }));
    } catch (err) {
      console.warn(`a ${type} listener failed`, err);
    }
  }
}
