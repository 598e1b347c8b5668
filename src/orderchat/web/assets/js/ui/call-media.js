/**
 * The media side of a call that needs no view: opening the microphone and the camera
 * (and telling why they would not open), keeping a sender's picture at its full size,
 * and judging a peer connection's network from its getStats() report.
 */

const AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

/**
 * Stop every track of a stream (the camera's light goes off with it).
 * @param {MediaStream|null} stream
 */
export function stopStream(stream) {
  if (stream) for (const track of stream.getTracks()) track.stop();
}

/**
 * The camera's constraints; `facingMode` picks the front (`user`) or back (`environment`) one.
 * @param {"user"|"environment"} facing
 * @returns {MediaTrackConstraints}
 */
export function cameraConstraints(facing) {
  return { facingMode: facing };
}

/**
 * Which sentence tells why a microphone (`mic`) or a camera (`camera`) cannot be used.
 * @param {*} err what getUserMedia rejected with
 * @param {"mic"|"camera"} device
 * @returns {string} a `call.err.*` key
 */
export function deviceProblem(err, device) {
  const name = (err && err.name) || "";
  const prefix = `call.err.${device}`;
  if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError")
    return `${prefix}Denied`;
  if (name === "NotFoundError" || name === "OverconstrainedError" || name === "DevicesNotFoundError")
    return `${prefix}Missing`;
  if (name === "NotReadableError" || name === "TrackStartError" || name === "AbortError") return `${prefix}Busy`;
  return `${prefix}Missing`;
}

/**
 * The microphone, and the camera for a video call. A video call goes on with sound
 * only when the camera is refused or missing; without a microphone there is no call.
 * @param {"audio"|"video"} media
 * @returns {Promise<{stream: MediaStream, cameraProblem?: string}|{problem: string}>}
 *   the stream (with the `call.err.*` key of a camera that did not open), or the key of
 *   why there is no call
 */
export async function openLocalMedia(media) {
  const devices = navigator.mediaDevices;
  // Browsers keep the camera and microphone from pages on plain HTTP (docs/calls.md).
  if (!window.isSecureContext) return { problem: "call.err.insecure" };
  if (!devices || typeof devices.getUserMedia !== "function" || typeof RTCPeerConnection === "undefined")
    return { problem: "call.err.unsupported" };
  if (media === "video") {
    try {
      return { stream: await devices.getUserMedia({ audio: AUDIO, video: cameraConstraints("user") }) };
    } catch (err) {
      console.warn("camera and microphone not opened together", err);
      try {
        const stream = await devices.getUserMedia({ audio: AUDIO, video: false });
        return { stream, cameraProblem: deviceProblem(err, "camera") };
      } catch (micErr) {
        return { problem: deviceProblem(micErr, "mic") };
      }
    }
  }
  try {
    return { stream: await devices.getUserMedia({ audio: AUDIO, video: false }) };
  } catch (err) {
    return { problem: deviceProblem(err, "mic") };
  }
}

/**
 * The picture keeps its full size when the network or the processor struggles, and
 * the frame rate gives way instead: in an order's call the camera shows goods, and a
 * snapshot of them is taken at the size the far end receives.
 * @param {RTCRtpSender} sender
 */
export function keepResolution(sender) {
  try {
    const params = sender.getParameters();
    if (!params.encodings || !params.encodings.length) return;
    params.degradationPreference = "maintain-resolution";
    sender.setParameters(params).catch(() => {});
  } catch {
    // Not every browser lets a sender choose.
  }
}

/**
 * What a peer connection's stats report says at one moment: the round trip (seconds,
 * or null), the bytes and packets received and lost so far, and the far end's voice level.
 * @param {RTCStatsReport} report
 * @returns {{rtt: number|null, bytes: number, lost: number, received: number, level: number|null}}
 */
export function readStats(report) {
  let rtt = null;
  let pairId = null;
  let bytes = 0;
  let lost = 0;
  let received = 0;
  let level = null;
  const pairs = new Map();
  report.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
    else if (s.type === "candidate-pair") pairs.set(s.id, s);
    else if (s.type === "inbound-rtp") {
      bytes += s.bytesReceived || 0;
      lost += Math.max(0, s.packetsLost || 0);
      received += s.packetsReceived || 0;
      if (s.kind === "audio" && typeof s.audioLevel === "number") level = s.audioLevel;
    } else if (s.type === "remote-inbound-rtp" && typeof s.roundTripTime === "number" && rtt === null) {
      rtt = s.roundTripTime;
    }
  });
  let pair = pairId ? pairs.get(pairId) : null;
  if (!pair) for (const p of pairs.values()) if (p.nominated && p.state === "succeeded") pair = p;
  if (pair && typeof pair.currentRoundTripTime === "number") rtt = pair.currentRoundTripTime;
  return { rtt, bytes, lost, received, level };
}

/**
 * The network between two readings of one peer connection (each `readStats` with `at`,
 * the moment in milliseconds), as a tile shows it.
 * @param {{at: number, bytes: number, lost: number, received: number}} before
 * @param {{at: number, rtt: number|null, bytes: number, lost: number, received: number, level: number|null}} now
 * @param {boolean} connected whether the connection says it is connected
 * @returns {{quality: "good"|"fair"|"poor", rttMs: number|null, loss: number, kbps: number,
 *            bytes: number, level: number|null}}
 */
export function judgeQuality(before, now, connected) {
  const seconds = Math.max(0.001, (now.at - before.at) / 1000);
  const kbps = Math.max(0, Math.round(((now.bytes - before.bytes) * 8) / seconds / 1000));
  const dLost = Math.max(0, now.lost - before.lost);
  const dReceived = Math.max(0, now.received - before.received);
  const loss = dLost + dReceived > 0 ? (100 * dLost) / (dLost + dReceived) : 0;
  const rttMs = now.rtt === null ? null : Math.round(now.rtt * 1000);
  // Nothing at all arriving over a connected path is as bad as it gets; a low bitrate
  // alone is not (a muted voice sends little).
  const stalled = connected && now.bytes === before.bytes;
  let quality = "good";
  if ((rttMs !== null && rttMs > 400) || loss > 8 || stalled) quality = "poor";
  else if ((rttMs !== null && rttMs > 200) || loss > 2) quality = "fair";
  return { quality, rttMs, loss, kbps, bytes: now.bytes, level: now.level };
}
