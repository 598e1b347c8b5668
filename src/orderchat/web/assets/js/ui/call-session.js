/**
 * The call this page is in (docs/calls.md): the local media, a full mesh of
 * RTCPeerConnections — one per other joined party — and the call view with its tiles,
 * its controls, the people still being rung and the dialog that rings more of them.
 *
 * Whoever joins offers to every party already joined; a rejoin after a reconnect does
 * the same with an ICE restart. Both ends follow the "perfect negotiation" pattern, so
 * a renegotiation from either side (camera on, a shared screen) never deadlocks: the
 * party with the smaller user id is the polite one and gives way when two offers cross.
 */

import { clear, h } from "../dom.js";
import { t } from "../i18n.js";
import { errorText } from "../api.js";
import { newRef } from "../ref.js";
import { uploadFile } from "../upload.js";
import { icon } from "./icons.js";
import { avatar, toast } from "./util.js";
import { fmtCallDuration } from "./call-record.js";
import { addableMembers, addPeopleDialog } from "./call-people.js";
import { cameraConstraints, deviceProblem, judgeQuality, keepResolution, readStats, stopStream } from "./call-media.js";
import "./strings-calls.js";
import "./strings.js";

const STATS_MS = 2000;
// A party that joined after us offers to us; if no offer came by then, we offer.
const OFFER_FALLBACK_MS = 6000;
/** Ended parties' states: a party in one of these is out of the call for good. */
export const GONE = new Set(["left", "declined", "busy", "missed"]);

/**
 * One user's party in a call's state, or null.
 * @param {object|null} call a `call` frame
 * @param {string} userId
 * @returns {object|null}
 */
export function partyOf(call, userId) {
  return ((call && call.parties) || []).find((p) => p && p.user === userId) || null;
}

/** Why a call ended, for whoever was still in it: busy, declined and missed say so. */
export function endedNotice(call) {
  const why = { busy: "call.endedBusy", declined: "call.endedDeclined", missed: "call.endedMissed" };
  return why[call.outcome] || "call.ended";
}

/** What an operation's refusal means to the person who tried it. */
export function refusalText(err) {
  // docs/calls.md names the reason `call_full`; the server sends its catalogue key.
  if (err && (err.reason === "call_full" || err.reason === "calls.call_full")) return t("call.full");
  if (err && (err.code === "offline" || err.code === "timeout")) return t("call.offline");
  return errorText(err);
}

/**
 * The call this page is in: the local media, one peer connection per other joined
 * party, and the call view.
 */
export class CallSession {
  constructor(manager, call, stream) {
    this.manager = manager;
    this.realtime = manager.realtime;
    this.me = manager.me;
    this.id = call.call;
    this.conv = call.conv;
    this.media = call.media === "video" ? "video" : "audio";
    this.internal = Boolean(call.internal);
    this.state = call;
    this.iceServers = Array.isArray(call.ice_servers) ? call.ice_servers : [];
    // "relay" when the shop keeps every address private: media only through TURN.
    this.icePolicy = call.ice_transport_policy === "relay" ? "relay" : "all";
    this.conn = null;
    this.mic = stream.getAudioTracks()[0] || null;
    this.camera = stream.getVideoTracks()[0] || null;
    this.screen = null;
    this.facing = "user";
    this.muted = false;
    // The stream every sent track belongs to, so the far end groups them as one.
    this.sendStream = new MediaStream([this.mic, this.camera].filter(Boolean));
    this.peers = new Map();
    this.chains = new Map();
    this.tiles = new Map();
    this.selected = null;
    this.ended = false;
    this.rejoining = false;
    this.full = false;
    this.mini = false;
    this.fallbackTimers = new Map();
    /** Each other party's last state, to tell who declined, missed or was busy meanwhile. */
    this.partyStates = null;
    this.addDialog = null;
    this.statsTimer = setInterval(() => this.sampleAll(), STATS_MS);
    this.clockTimer = setInterval(() => this.renderClock(), 1000);
    this.buildView();
    this.countCameras();
    this.onDeviceChange = () => this.countCameras();
    if (navigator.mediaDevices && navigator.mediaDevices.addEventListener)
      navigator.mediaDevices.addEventListener("devicechange", this.onDeviceChange);
  }

  // ---- joining -----------------------------------------------------------------------

  /**
   * Just joined (or rejoined): offer to every party already joined, as docs/calls.md
   * says, with an ICE restart when coming back.
   */
  join(call, { restart }) {
    this.update(call);
    this.sendMediaState();
    for (const p of this.others(call)) {
      if (p.state !== "joined") continue;
      const peer = this.peers.get(p.user);
      if (peer && restart) this.restartIce(peer);
      else if (!peer) this.createPeer(p.user, { offer: true });
    }
  }

  /** After the socket came back: take our place again and restart ICE with everyone. */
  async rejoin() {
    if (this.ended || this.rejoining) return;
    this.rejoining = true;
    this.renderStatus();
    let answer;
    try {
      answer = await this.realtime.request({ op: "call_rejoin", ref: newRef(), call: this.id });
    } catch (err) {
      this.rejoining = false;
      // Dropped again before the answer: the next welcome tries again.
      if (err && err.code === "offline") return;
      toast(t("call.rejoinFailed", { message: refusalText(err) }), "error");
      this.finish();
      return;
    }
    this.rejoining = false;
    if (this.ended) return;
    if (Array.isArray(answer.ice_servers)) {
      this.iceServers = answer.ice_servers;
      for (const peer of this.peers.values()) {
        try {
          peer.pc.setConfiguration({ ...peer.pc.getConfiguration(), ...this.rtcConfig() });
        } catch (err) {
          console.warn("ICE servers not updated", err);
        }
      }
    }
    this.conn = null;
    this.manager.calls.set(this.id, answer);
    this.join(answer, { restart: true });
    this.renderStatus();
  }

  others(call) {
    return ((call && call.parties) || []).filter((p) => p && p.user !== this.me.id);
  }

  /** A new state of the call from the server. */
  update(call) {
    if (this.ended) return;
    this.state = call;
    if (Array.isArray(call.ice_servers) && call.ice_servers.length) this.iceServers = call.ice_servers;
    if (call.ice_transport_policy === "relay" || call.ice_transport_policy === "all")
      this.icePolicy = call.ice_transport_policy;
    const mine = partyOf(call, this.me.id);
    if (call.state === "ended" || !mine || GONE.has(mine.state)) {
      this.finish(call.state === "ended" ? endedNotice(call) : null);
      return;
    }
    if (mine.state === "joined" && mine.conn) {
      if (!this.conn) this.conn = mine.conn;
      else if (mine.conn !== this.conn && !this.rejoining) {
        // Our place is now taken by another connection of ours (another device).
        this.finish("call.endedElsewhere");
        return;
      }
    }
    this.noteParties(call);
    for (const p of this.others(call)) {
      if (p.state === "joined" || p.state === "away") {
        this.ensureTile(p.user);
        if (p.state === "joined" && !this.peers.has(p.user) && !this.fallbackTimers.has(p.user)) {
          // They joined after us and offer to us; should their offer never come, we offer.
          this.fallbackTimers.set(
            p.user,
            setTimeout(() => {
              this.fallbackTimers.delete(p.user);
              const now = partyOf(this.state, p.user);
              if (!this.ended && now && now.state === "joined" && !this.peers.has(p.user))
                this.createPeer(p.user, { offer: true });
            }, OFFER_FALLBACK_MS),
          );
        }
      } else {
        this.closePeer(p.user);
        this.removeTile(p.user);
      }
    }
    for (const user of [...this.tiles.keys()]) {
      if (user !== this.me.id && !partyOf(call, user)) {
        this.closePeer(user);
        this.removeTile(user);
      }
    }
    this.renderTiles();
    for (const user of this.tiles.keys()) this.renderTile(user);
    this.renderStatus();
  }

  /**
   * Who said no, did not answer or was busy since the last state: said once, in one
   * line per outcome, so the one who rang them knows. The first state only sets the
   * starting point.
   */
  noteParties(call) {
    const before = this.partyStates;
    this.partyStates = new Map(this.others(call).map((p) => [p.user, p.state]));
    if (!before) return;
    const news = { declined: [], missed: [], busy: [] };
    for (const [user, state] of this.partyStates) {
      if (news[state] && before.get(user) !== state) news[state].push(this.manager.nameOf(user));
    }
    for (const [state, names] of Object.entries(news))
      if (names.length) toast(t(`call.gone.${state}`, { names: names.join(t("tl.listSep")) }));
  }

  sendMediaState() {
    this.realtime.live({
      op: "call_media",
      call: this.id,
      audio: Boolean(this.mic) && !this.muted,
      video: Boolean(this.camera) || Boolean(this.screen),
      screen: Boolean(this.screen),
    });
  }

  // ---- peers -------------------------------------------------------------------------

  /** The ICE servers (with this user's TURN credential) and policy the server gave. */
  rtcConfig() {
    return { iceServers: this.iceServers, iceTransportPolicy: this.icePolicy };
  }

  createPeer(user, { offer = false } = {}) {
    this.closePeer(user);
    const timer = this.fallbackTimers.get(user);
    if (timer) {
      clearTimeout(timer);
      this.fallbackTimers.delete(user);
    }
    const pc = new RTCPeerConnection(this.rtcConfig());
    const peer = {
      user,
      pc,
      polite: this.me.id < user,
      makingOffer: false,
      ignoreOffer: false,
      candidates: [],
      stream: new MediaStream(),
      sample: null,
    };
    this.peers.set(user, peer);
    if (this.mic) pc.addTrack(this.mic, this.sendStream);
    const video = this.screen || this.camera;
    if (video) {
      const sender = pc.addTrack(video, this.sendStream);
      keepResolution(sender);
    }
    pc.onnegotiationneeded = () => {
      // A connection made to answer an offer negotiates only once that offer is answered.
      if (!offer && !peer.answered) return;
      this.chain(user, () => (this.peers.get(user) === peer ? this.negotiate(peer) : null));
    };
    pc.onicecandidate = (event) => {
      const c = event.candidate;
      if (!c || !c.candidate) return;
      this.signal(user, "ice", { candidate: c.toJSON() });
    };
    pc.ontrack = (event) => this.onTrack(peer, event.track);
    pc.onconnectionstatechange = () => {
      if (this.peers.get(user) !== peer) return;
      this.renderTile(user);
      if (pc.connectionState === "connected")
        for (const sender of pc.getSenders()) if (sender.track && sender.track.kind === "video") keepResolution(sender);
      // A path that failed is looked for again; the impolite side asks, so two
      // restarts never cross.
      if (pc.connectionState === "failed" && !peer.polite) this.restartIce(peer);
    };
    pc.oniceconnectionstatechange = () => {
      if (this.peers.get(user) === peer) this.renderTile(user);
    };
    this.ensureTile(user);
    this.renderTile(user);
    return peer;
  }

  closePeer(user) {
    const peer = this.peers.get(user);
    if (!peer) return;
    this.peers.delete(user);
    peer.pc.onnegotiationneeded = null;
    peer.pc.onicecandidate = null;
    peer.pc.ontrack = null;
    peer.pc.onconnectionstatechange = null;
    peer.pc.oniceconnectionstatechange = null;
    try {
      peer.pc.close();
    } catch {
      // Already closed.
    }
  }

  async negotiate(peer, { iceRestart = false } = {}) {
    const pc = peer.pc;
    try {
      peer.makingOffer = true;
      if (iceRestart) {
        if (pc.signalingState === "have-local-offer") await pc.setLocalDescription({ type: "rollback" });
        const offer = await pc.createOffer({ iceRestart: true });
        if (pc.signalingState !== "stable") return;
        await pc.setLocalDescription(offer);
      } else {
        await pc.setLocalDescription();
      }
      if (pc.localDescription && pc.localDescription.type === "offer")
        this.signal(peer.user, "offer", { sdp: pc.localDescription.sdp });
    } catch (err) {
      console.warn("no offer made", err);
    } finally {
      peer.makingOffer = false;
    }
  }

  restartIce(peer) {
    this.chain(peer.user, () => this.negotiate(peer, { iceRestart: true }));
  }

  /** Run one step of a peer's signalling after the ones before it, never two at once. */
  chain(user, step) {
    const before = this.chains.get(user) || Promise.resolve();
    const next = before.then(step).catch((err) => console.warn("a call signal failed", err));
    this.chains.set(user, next);
    return next;
  }

  signal(to, kind, body) {
    this.realtime.live({ op: "call_signal", call: this.id, to, kind, ...body });
  }

  onSignal(f) {
    if (this.ended || !f.from || f.from === this.me.id) return;
    this.chain(f.from, () => this.applySignal(f));
  }

  async applySignal(f) {
    if (this.ended) return;
    let peer = this.peers.get(f.from);
    if (f.kind === "offer" || f.kind === "answer") {
      if (typeof f.sdp !== "string") return;
      const description = { type: f.kind, sdp: f.sdp };
      if (!peer) {
        if (f.kind !== "offer") return;
        peer = this.createPeer(f.from);
      }
      const pc = peer.pc;
      const collision = f.kind === "offer" && (peer.makingOffer || pc.signalingState !== "stable");
      peer.ignoreOffer = !peer.polite && collision;
      if (peer.ignoreOffer) return;
      try {
        await pc.setRemoteDescription(description);
      } catch (err) {
        if (f.kind !== "offer") throw err;
        // An offer from a connection that is new on their side (they reloaded): start afresh.
        console.warn("starting the connection afresh", err);
        peer = this.createPeer(f.from);
        await peer.pc.setRemoteDescription(description);
      }
      await this.flushCandidates(peer);
      if (f.kind === "offer") {
        await peer.pc.setLocalDescription();
        peer.answered = true;
        this.signal(f.from, "answer", { sdp: peer.pc.localDescription.sdp });
      }
    } else if (f.kind === "ice" && f.candidate && typeof f.candidate === "object") {
      if (!peer) return;
      if (!peer.pc.remoteDescription) {
        peer.candidates.push(f.candidate);
        return;
      }
      try {
        await peer.pc.addIceCandidate(f.candidate);
      } catch (err) {
        if (!peer.ignoreOffer) console.warn("an ICE candidate was refused", err);
      }
    }
  }

  async flushCandidates(peer) {
    const list = peer.candidates;
    peer.candidates = [];
    for (const c of list) {
      try {
        await peer.pc.addIceCandidate(c);
      } catch (err) {
        console.warn("an ICE candidate was refused", err);
      }
    }
  }

  onTrack(peer, track) {
    if (this.peers.get(peer.user) !== peer) return;
    const stream = peer.stream;
    if (!stream.getTracks().includes(track)) {
      // One picture and one voice per party: a newer track of a kind replaces the old.
      for (const old of stream.getTracks()) if (old.kind === track.kind) stream.removeTrack(old);
      stream.addTrack(track);
    }
    track.addEventListener("unmute", () => this.renderTile(peer.user));
    track.addEventListener("mute", () => this.renderTile(peer.user));
    const tile = this.ensureTile(peer.user);
    if (tile.video.srcObject !== stream) tile.video.srcObject = stream;
    this.play(tile.video);
    this.renderTile(peer.user);
  }

  play(video) {
    const p = video.play();
    if (p && p.catch) p.catch(() => {});
  }

  // ---- local media controls ------------------------------------------------------------

  toggleMute() {
    if (!this.mic) return;
    this.muted = !this.muted;
    this.mic.enabled = !this.muted;
    this.sendMediaState();
    this.renderControls();
    this.renderTile(this.me.id);
  }

  async toggleCamera() {
    if (this.camera) {
      const old = this.camera;
      this.camera = null;
      if (!this.screen) await this.setVideoTrack(null);
      this.sendStream.removeTrack(old);
      old.stop();
    } else {
      let stream;
      try {
        stream = await navigator.mediaDevices.getUserMedia({ video: cameraConstraints(this.facing) });
      } catch (err) {
        toast(t(deviceProblem(err, "camera")), "error");
        return;
      }
      if (this.ended) {
        stopStream(stream);
        return;
      }
      this.camera = stream.getVideoTracks()[0];
      this.sendStream.addTrack(this.camera);
      if (!this.screen) await this.setVideoTrack(this.camera);
      this.countCameras();
    }
    this.sendMediaState();
    this.renderControls();
    this.renderTile(this.me.id);
  }

  /** Front to back camera and back again (facingMode), in place of the one sending. */
  async flipCamera() {
    if (!this.camera) return;
    const next = this.facing === "user" ? "environment" : "user";
    const old = this.camera;
    // A phone may not open both cameras at once: close the old one first.
    old.stop();
    let track = null;
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: { exact: next } } });
      track = stream.getVideoTracks()[0];
      this.facing = next;
    } catch (err) {
      console.warn("the other camera did not open", err);
      try {
        const stream = await navigator.mediaDevices.getUserMedia({ video: cameraConstraints(this.facing) });
        track = stream.getVideoTracks()[0];
      } catch (again) {
        toast(t(deviceProblem(again, "camera")), "error");
      }
    }
    this.sendStream.removeTrack(old);
    this.camera = track;
    if (track) this.sendStream.addTrack(track);
    if (this.ended) {
      if (track) track.stop();
      return;
    }
    if (!this.screen) await this.setVideoTrack(track);
    this.sendMediaState();
    this.renderControls();
    this.renderTile(this.me.id);
  }

  async toggleScreen() {
    if (this.screen) {
      this.stopScreen();
      return;
    }
    if (!navigator.mediaDevices || typeof navigator.mediaDevices.getDisplayMedia !== "function") {
      toast(t("call.err.screen", { message: t("call.err.unsupported") }), "error");
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch (err) {
      if (err && err.name !== "NotAllowedError") toast(t("call.err.screen", { message: err.message || "" }), "error");
      return;
    }
    const track = stream.getVideoTracks()[0];
    if (!track || this.ended) {
      stopStream(stream);
      return;
    }
    if ("contentHint" in track) track.contentHint = "detail";
    track.addEventListener("ended", () => {
      if (this.screen === track) this.stopScreen();
    });
    this.screen = track;
    await this.setVideoTrack(track);
    this.sendMediaState();
    this.renderControls();
    this.renderTile(this.me.id);
  }

  async stopScreen() {
    const track = this.screen;
    if (!track) return;
    this.screen = null;
    track.stop();
    await this.setVideoTrack(this.camera);
    this.sendMediaState();
    this.renderControls();
    this.renderTile(this.me.id);
  }

  /**
   * What every peer connection sends as the picture: replaced in place when a video
   * sender exists (no renegotiation), added otherwise (a new offer follows).
   */
  async setVideoTrack(track) {
    for (const peer of this.peers.values()) {
      const pc = peer.pc;
      if (pc.signalingState === "closed") continue;
      const tr = pc
        .getTransceivers()
        .find((x) => !x.stopped && x.receiver && x.receiver.track && x.receiver.track.kind === "video");
      try {
        if (tr) {
          await tr.sender.replaceTrack(track);
          if (track && (tr.direction === "recvonly" || tr.direction === "inactive")) {
            if (tr.sender.setStreams) tr.sender.setStreams(this.sendStream);
            tr.direction = "sendrecv";
            keepResolution(tr.sender);
          }
        } else if (track) {
          keepResolution(pc.addTrack(track, this.sendStream));
        }
      } catch (err) {
        console.warn("the picture was not changed", err);
      }
    }
  }

  async countCameras() {
    let count;
    try {
      const devices = await navigator.mediaDevices.enumerateDevices();
      count = devices.filter((d) => d.kind === "videoinput").length;
    } catch {
      count = 0;
    }
    this.cameras = count;
    this.renderControls();
  }

  // ---- snapshot ------------------------------------------------------------------------

  /** The tile a snapshot takes: the chosen one, else the first far-end picture, else ours. */
  snapshotTile() {
    const has = (tile) => tile && tile.video.videoWidth > 0 && tile.video.videoHeight > 0;
    if (this.selected && has(this.tiles.get(this.selected))) return this.tiles.get(this.selected);
    for (const [user, tile] of this.tiles) if (user !== this.me.id && has(tile)) return tile;
    const own = this.tiles.get(this.me.id);
    return has(own) ? own : null;
  }

  /** Draw the picture at its full size, upload it, and send it to the call's conversation. */
  async snapshot() {
    const tile = this.snapshotTile();
    if (!tile) {
      toast(t("call.snapshotNone"), "error");
      return;
    }
    const video = tile.video;
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    const flash = tile.el;
    flash.classList.remove("call-flash");
    void flash.offsetWidth;
    flash.classList.add("call-flash");
    const button = this.controls && this.controls.querySelector("[data-action='snapshot']");
    if (button) button.disabled = true;
    try {
      const blob = await new Promise((resolve, reject) =>
        canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("no picture"))), "image/jpeg", 0.92),
      );
      const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*$/, "").replace("T", "-");
      const file = new File([blob], `snapshot-${stamp}.jpg`, { type: "image/jpeg" });
      const id = await uploadFile(file, this.conv);
      const frame = {
        op: "send",
        ref: newRef(),
        conv: this.conv,
        kind: "image",
        text: "",
        attachments: [{ id }],
        mentions: [],
      };
      if (this.internal) frame.internal = true;
      await this.realtime.send(frame);
      toast(t("call.snapshotSent"));
    } catch (err) {
      toast(t("call.snapshotFailed", { message: errorText(err) }), "error");
    } finally {
      if (button) button.disabled = false;
    }
  }

  // ---- adding people ---------------------------------------------------------------------

  /**
   * Ring more of the conversation's members into this call (`call_add`): those not in
   * it, and those who left, missed or declined it.
   */
  async addPeople() {
    if (this.ended || this.addDialog) return;
    const button = this.controls.querySelector("[data-action='add']");
    if (button) button.disabled = true;
    let members;
    try {
      members = await this.manager.conversationMembers(this.conv);
    } finally {
      if (button) button.disabled = false;
    }
    if (this.ended || this.addDialog) return;
    const candidates = addableMembers(this.state, members, {
      me: this.me.id,
      staff: this.manager.staff,
      isCustomer: (id) => {
        const user = this.manager.userOf(id);
        return Boolean(user && user.kind === "customer");
      },
    });
    this.addDialog = addPeopleDialog({
      candidates,
      nameOf: (id) => this.manager.nameOf(id),
      userOf: (id) => this.manager.userOf(id),
      ring: async (users) => {
        if (this.ended) throw { userMessage: t("call.ended") };
        try {
          await this.realtime.request({ op: "call_add", ref: newRef(), call: this.id, users });
        } catch (err) {
          throw { userMessage: t("call.add.failed", { message: refusalText(err) }) };
        }
      },
      onClose: () => {
        this.addDialog = null;
      },
    });
  }

  // ---- quality ---------------------------------------------------------------------------

  sampleAll() {
    for (const peer of this.peers.values()) this.sample(peer);
  }

  /** Round trip, packet loss and the inbound bitrate of one peer, from getStats(). */
  async sample(peer) {
    let report;
    try {
      report = await peer.pc.getStats();
    } catch {
      return;
    }
    if (this.peers.get(peer.user) !== peer) return;
    const reading = { at: performance.now(), ...readStats(report) };
    const before = peer.sample;
    peer.sample = reading;
    const tile = this.tiles.get(peer.user);
    if (!tile || !before) return;
    tile.stats = judgeQuality(before, reading, peer.pc.connectionState === "connected");
    this.renderQuality(peer.user);
  }

  renderQuality(user) {
    const tile = this.tiles.get(user);
    if (!tile || user === this.me.id) return;
    const s = tile.stats;
    const el = tile.quality;
    const label = s ? t(`call.quality.${s.quality}`) : t("call.quality.pending");
    el.dataset.quality = s ? s.quality : "pending";
    el.title = s
      ? t("call.quality.detail", {
          label,
          rtt: s.rttMs === null ? "–" : s.rttMs,
          loss: s.loss.toFixed(1),
          kbps: s.kbps,
        })
      : label;
    el.setAttribute("aria-label", el.title);
    if (s) {
      tile.el.dataset.quality = s.quality;
      tile.el.dataset.rttMs = s.rttMs === null ? "" : String(s.rttMs);
      tile.el.dataset.lossPct = s.loss.toFixed(2);
      tile.el.dataset.kbps = String(s.kbps);
      tile.el.dataset.bytesIn = String(s.bytes);
      if (s.level !== null) tile.el.dataset.audioLevel = String(s.level);
    }
  }

  // ---- the view --------------------------------------------------------------------------

  buildView() {
    this.tileBox = h("div", { class: "call-tiles" });
    this.statusEl = h("p", { class: "call-status", testid: "call-status", role: "status" });
    this.clockEl = h("span", { class: "call-clock", testid: "call-clock" });
    this.titleEl = h("p", { class: "call-title" });
    // Staff only: said on the view, so nobody takes the customer to be listening.
    this.internalEl = this.internal
      ? h("span", { class: "call-internal", testid: "call-internal" }, icon("lock"), h("span"))
      : null;
    this.ringingEl = h(
      "div",
      { class: "call-ringing", testid: "call-ringing", hidden: true },
      h("span", { class: "call-ringing-label" }),
      h("ul", { class: "call-ringing-list" }),
    );
    this.expandBtn = h("button", {
      type: "button",
      class: "icon-btn call-expand",
      dataset: { action: "expand" },
      on: { click: () => this.toggleFull() },
    });
    this.miniBtn = h("button", {
      type: "button",
      class: "icon-btn call-mini",
      dataset: { action: "minimize" },
      on: { click: () => this.toggleMini() },
    });
    this.controls = h("div", { class: "call-controls", role: "toolbar" });
    this.el = h(
      "section",
      {
        class: "call-view",
        testid: "call-view",
        dataset: { call: this.id, conv: this.conv, media: this.media, internal: this.internal ? "true" : null },
        "aria-label": t(`call.kind.${this.media}`),
      },
      h(
        "header",
        { class: "call-head" },
        h(
          "div",
          { class: "call-head-text" },
          h("div", { class: "call-title-row" }, this.titleEl, this.internalEl),
          this.statusEl,
        ),
        this.clockEl,
        this.miniBtn,
        this.expandBtn,
      ),
      this.ringingEl,
      this.tileBox,
      this.controls,
    );
    document.body.appendChild(this.el);
    document.body.classList.add("in-call");
    this.ensureTile(this.me.id);
    const own = this.tiles.get(this.me.id);
    own.video.muted = true;
    own.video.srcObject = this.previewStream();
    this.play(own.video);
    this.relabel();
  }

  previewStream() {
    const track = this.screen || this.camera;
    return new MediaStream(track ? [track] : []);
  }

  show() {
    this.el.classList.add("call-attention");
    setTimeout(() => this.el.classList.remove("call-attention"), 600);
  }

  toggleFull() {
    this.full = !this.full;
    if (this.full) this.mini = false;
    this.renderExpand();
  }

  /** Down to a bar (the far ends are still heard) to read and write in the conversation. */
  toggleMini() {
    this.mini = !this.mini;
    if (this.mini) this.full = false;
    this.renderExpand();
  }

  renderExpand() {
    this.el.classList.toggle("is-full", Boolean(this.full));
    this.el.classList.toggle("is-mini", Boolean(this.mini));
    const label = t(this.full ? "call.shrink" : "call.expand");
    clear(this.expandBtn).append(icon(this.full ? "shrink" : "expand"));
    this.expandBtn.title = label;
    this.expandBtn.setAttribute("aria-label", label);
    const mini = t(this.mini ? "call.restore" : "call.minimize");
    clear(this.miniBtn).append(icon(this.mini ? "restore" : "minimize"));
    this.miniBtn.title = mini;
    this.miniBtn.setAttribute("aria-label", mini);
    this.miniBtn.setAttribute("aria-pressed", this.mini ? "true" : "false");
  }

  relabel() {
    this.el.setAttribute("aria-label", t(`call.kind.${this.media}`));
    this.renderExpand();
    this.renderControls();
    this.renderStatus();
    for (const user of this.tiles.keys()) this.renderTile(user);
  }

  ensureTile(user) {
    let tile = this.tiles.get(user);
    if (tile) return tile;
    const self = user === this.me.id;
    const video = h("video", {
      class: "call-video",
      autoplay: true,
      playsinline: true,
      muted: self,
      testid: self ? "call-video-self" : "call-video",
    });
    video.playsInline = true;
    if (self) video.muted = true;
    const quality = h("span", { class: "call-quality", testid: "call-quality", dataset: { quality: "pending" } });
    const el = h(
      "div",
      {
        class: ["call-tile", self ? "call-tile-self" : "call-tile-remote"],
        testid: "call-tile",
        dataset: { user, self: self ? "true" : null, remote: self ? null : "true" },
        tabindex: "0",
        on: {
          click: () => this.select(user),
          keydown: (event) => {
            if (event.key === "Enter" || event.key === " ") {
              event.preventDefault();
              this.select(user);
            }
          },
        },
      },
      video,
      h(
        "div",
        { class: "call-tile-placeholder", "aria-hidden": "true" },
        avatar(this.manager.userOf(user), user, "lg"),
      ),
      h("div", { class: "call-tile-state", testid: "call-tile-state" }),
      h(
        "div",
        { class: "call-tile-bar" },
        h("span", { class: "call-tile-name" }),
        h("span", { class: "call-tile-badges" }),
        self ? null : quality,
      ),
    );
    video.addEventListener("resize", () => this.renderTile(user));
    video.addEventListener("loadedmetadata", () => this.renderTile(user));
    tile = { el, video, quality, stats: null };
    this.tiles.set(user, tile);
    this.renderTiles();
    this.renderTile(user);
    return tile;
  }

  removeTile(user) {
    const tile = this.tiles.get(user);
    if (!tile || user === this.me.id) return;
    this.tiles.delete(user);
    tile.video.srcObject = null;
    tile.el.remove();
    if (this.selected === user) this.selected = null;
    this.renderTiles();
  }

  select(user) {
    this.selected = this.selected === user ? null : user;
    for (const [id, tile] of this.tiles) tile.el.classList.toggle("is-selected", id === this.selected);
  }

  renderTiles() {
    if (!this.tileBox) return;
    // Far ends first, in the order they joined; ours last.
    const order = [...this.tiles.keys()].filter((u) => u !== this.me.id);
    if (this.tiles.has(this.me.id)) order.push(this.me.id);
    for (const user of order) {
      const el = this.tiles.get(user).el;
      if (el.parentNode !== this.tileBox || this.tileBox.lastChild !== el) this.tileBox.appendChild(el);
    }
    this.tileBox.dataset.count = String(order.length);
  }

  renderTile(user) {
    const tile = this.tiles.get(user);
    if (!tile) return;
    const self = user === this.me.id;
    const party = partyOf(this.state, user);
    let sendsVideo;
    let audio;
    let screen;
    if (self) {
      sendsVideo = Boolean(this.screen || this.camera);
      audio = Boolean(this.mic) && !this.muted;
      screen = Boolean(this.screen);
      if (tile.video.srcObject) {
        const want = this.screen || this.camera;
        const have = tile.video.srcObject.getVideoTracks()[0] || null;
        if (want !== have) {
          tile.video.srcObject = this.previewStream();
          this.play(tile.video);
        }
      }
    } else {
      const stream = tile.video.srcObject;
      const track = stream ? stream.getVideoTracks()[0] : null;
      const live = Boolean(track && track.readyState === "live" && !track.muted);
      sendsVideo = live && !(party && party.video === false);
      audio = !(party && party.audio === false);
      screen = Boolean(party && party.screen);
    }
    const showVideo = sendsVideo && tile.video.videoWidth > 0;
    tile.el.classList.toggle("has-video", showVideo);
    tile.el.dataset.audio = audio ? "on" : "off";
    tile.el.dataset.video = sendsVideo ? "on" : "off";
    tile.el.dataset.screen = screen ? "on" : "off";
    const name = self ? `${this.manager.nameOf(user)} (${t("call.you")})` : this.manager.nameOf(user);
    tile.el.querySelector(".call-tile-name").textContent = name;
    tile.el.setAttribute("aria-label", name);
    const badges = [];
    if (!audio) badges.push(h("span", { class: "call-badge", title: t("call.badge.muted") }, icon("micOff")));
    if (!sendsVideo && this.media === "video")
      badges.push(h("span", { class: "call-badge", title: t("call.badge.cameraOff") }, icon("videoOff")));
    if (screen) badges.push(h("span", { class: "call-badge", title: t("call.badge.screen") }, icon("screen")));
    clear(tile.el.querySelector(".call-tile-badges")).append(...badges);
    let stateText = "";
    if (!self) {
      const peer = this.peers.get(user);
      const conn = party && party.state === "away" ? "away" : peer ? peer.pc.connectionState : "new";
      tile.el.dataset.conn = conn;
      if (conn !== "connected") stateText = t(`call.state.${conn}`);
      this.renderQuality(user);
    }
    tile.el.querySelector(".call-tile-state").textContent = stateText;
    tile.el.classList.toggle("is-selected", this.selected === user);
  }

  renderStatus() {
    if (!this.statusEl) return;
    const call = this.state;
    const title = this.manager.titleOf(this.conv);
    this.titleEl.textContent = title ? `${t(`call.kind.${this.media}`)} · ${title}` : t(`call.kind.${this.media}`);
    if (this.internalEl) {
      this.internalEl.title = t("call.internalHint");
      this.internalEl.lastChild.textContent = t("call.internal");
    }
    const ringing = this.others(call).filter((p) => p.state === "ringing");
    const joined = this.others(call).filter((p) => p.state === "joined" || p.state === "away");
    const offline = this.rejoining || this.realtime.state !== "online";
    let text = "";
    if (offline) text = t("call.reconnecting");
    else if (!joined.length && ringing.length)
      text = t("call.calling", { names: ringing.map((p) => this.manager.nameOf(p.user)).join(t("tl.listSep")) });
    else if (!joined.length) text = t("call.waiting");
    this.statusEl.textContent = text;
    this.statusEl.hidden = !text;
    // Once someone is talking, those still being rung (say, just added) show as a list.
    this.renderRinging(joined.length ? ringing : []);
    this.el.dataset.state = call.state || "";
    this.renderClock();
  }

  renderRinging(parties) {
    const box = this.ringingEl;
    box.hidden = !parties.length;
    box.dataset.count = String(parties.length);
    box.querySelector(".call-ringing-label").textContent = t("call.ringingList");
    clear(box.querySelector(".call-ringing-list")).append(
      ...parties.map((p) =>
        h(
          "li",
          { class: "call-ringing-person", testid: "call-ringing-person", dataset: { user: p.user } },
          avatar(this.manager.userOf(p.user), p.user, "sm"),
          h("span", { class: "call-ringing-name" }, this.manager.nameOf(p.user)),
        ),
      ),
    );
  }

  renderClock() {
    const since = this.state && this.state.answered_ts;
    this.clockEl.textContent = since ? fmtCallDuration(Date.now() - since) : "";
  }

  renderControls() {
    if (!this.controls) return;
    const control = (action, label, iconName, onClick, { pressed = null, danger = false, hidden = false } = {}) =>
      h(
        "button",
        {
          type: "button",
          class: ["call-btn", danger ? "call-btn-hangup" : null, pressed ? "is-on" : null],
          testid: `call-${action}`,
          dataset: { action },
          title: label,
          "aria-label": label,
          "aria-pressed": pressed === null ? null : pressed ? "true" : "false",
          hidden,
          on: { click: onClick },
        },
        icon(iconName),
      );
    const canShare = Boolean(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);
    clear(this.controls).append(
      control(
        "mute",
        t(this.muted ? "call.unmute" : "call.mute"),
        this.muted ? "micOff" : "mic",
        () => this.toggleMute(),
        {
          pressed: this.muted,
          hidden: !this.mic,
        },
      ),
      control(
        "camera",
        t(this.camera ? "call.cameraOff" : "call.cameraOn"),
        this.camera ? "video" : "videoOff",
        () => this.toggleCamera(),
        { pressed: !this.camera },
      ),
      control("flip", t("call.flip"), "flip", () => this.flipCamera(), {
        hidden: !this.camera || !(this.cameras > 1),
      }),
      control("screen", t(this.screen ? "call.screenStop" : "call.screen"), "screen", () => this.toggleScreen(), {
        pressed: Boolean(this.screen),
        hidden: !canShare,
      }),
      control("add", t("call.add"), "userPlus", () => this.addPeople()),
      control("snapshot", t("call.snapshot"), "camera", () => this.snapshot()),
      control("hangup", t("call.hangup"), "hangup", () => this.hangup(), { danger: true }),
    );
    this.controls.setAttribute("aria-label", t(`call.kind.${this.media}`));
    const hint = this.tiles.size > 1 ? t("call.pick") : "";
    this.tileBox.title = hint;
  }

  // ---- the end -------------------------------------------------------------------------

  hangup() {
    if (this.ended) return;
    this.realtime.request({ op: "call_hangup", ref: newRef(), call: this.id }).catch((err) => {
      console.warn("the hang-up was not sent", err);
    });
    this.finish();
  }

  /** Close everything of this call on this page; `noticeKey` says why, when it is news. */
  finish(noticeKey) {
    if (this.ended) return;
    this.ended = true;
    // Out of the call on purpose or for good: no prompt to rejoin it.
    this.manager.settled.set(this.id, "away");
    clearInterval(this.statsTimer);
    clearInterval(this.clockTimer);
    for (const timer of this.fallbackTimers.values()) clearTimeout(timer);
    this.fallbackTimers.clear();
    for (const user of [...this.peers.keys()]) this.closePeer(user);
    for (const track of [this.mic, this.camera, this.screen]) if (track) track.stop();
    for (const tile of this.tiles.values()) tile.video.srcObject = null;
    if (navigator.mediaDevices && navigator.mediaDevices.removeEventListener)
      navigator.mediaDevices.removeEventListener("devicechange", this.onDeviceChange);
    if (this.addDialog) this.addDialog.close();
    this.el.remove();
    document.body.classList.remove("in-call");
    if (noticeKey) toast(t(noticeKey));
    this.manager.sessionEnded(this);
  }
}
