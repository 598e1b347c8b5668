"""Two Chromium pages call each other through the server's signalling (part 3 of `calls`).

The pages speak the protocol themselves (the script below), not through the
web app, so the figure is the protocol's and WebRTC's: from the callee's
`call_accept` to the first video frame it decodes from the caller, with the
ICE servers and transport policy the server's answers give.
"""

from __future__ import annotations

import asyncio

from playwright.async_api import Page, async_playwright

from bench._seed import SeededUser

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
CALL_TIMEOUT_S = 60.0

# Shared by both sides: a socket whose frames wait in a list until someone takes one.
_SOCKET = """
async function openSocket(url, token) {
  const ws = new WebSocket(url);
  const frames = [];
  let wakers = [];
  ws.onmessage = (event) => {
    frames.push(JSON.parse(event.data));
    const waiting = wakers;
    wakers = [];
    waiting.forEach((wake) => wake());
  };
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
  const take = async (wanted) => {
    for (;;) {
      const at = frames.findIndex(wanted);
      if (at >= 0) return frames.splice(at, 1)[0];
      await new Promise((wake) => wakers.push(wake));
    }
  };
  const send = (frame) => ws.send(JSON.stringify(frame));
  send({ op: "hello", token, device: "bench-" + Math.random() });
  await take((f) => f.op === "welcome");
  return { ws, take, send };
}
function peer(answer, send, call, to) {
  const pc = new RTCPeerConnection({
    iceServers: answer.ice_servers, iceTransportPolicy: answer.ice_transport_policy,
  });
  pc.onicecandidate = (event) => {
    if (event.candidate) {
      send({ op: "call_signal", call, to, kind: "ice", candidate: event.candidate.toJSON() });
    }
  };
  return pc;
}
async function applyCandidates(take, pc) {
  for (;;) {
    const signal = await take((f) => f.op === "call_signal" && f.kind === "ice");
    try { await pc.addIceCandidate(signal.candidate); } catch (err) { /* late: the call is over */ }
  }
}
"""

_CALLER = (
    "async ({ url, token, conv, callee }) => {"
    + _SOCKET
    + """
  const { ws, take, send } = await openSocket(url, token);
  const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  send({ op: "call_invite", ref: "invite", conv, media: "video" });
  const answer = await take((f) => f.ref === "invite");
  if (answer.op !== "call") throw new Error(JSON.stringify(answer));
  const pc = peer(answer, send, answer.call, callee);
  stream.getTracks().forEach((track) => pc.addTrack(track, stream));
  await take((f) => f.op === "call" && f.call === answer.call && f.state === "active");
  await pc.setLocalDescription(await pc.createOffer());
  const offer = pc.localDescription.sdp;
  send({ op: "call_signal", call: answer.call, to: callee, kind: "offer", sdp: offer });
  const reply = await take((f) => f.op === "call_signal" && f.kind === "answer");
  await pc.setRemoteDescription({ type: "answer", sdp: reply.sdp });
  applyCandidates(take, pc);
  await take((f) => f.op === "call" && f.call === answer.call && f.state === "ended");
  pc.close();
  stream.getTracks().forEach((track) => track.stop());
  ws.close();
}"""
)

_CALLEE = (
    "async ({ url, token, caller }) => {"
    + _SOCKET
    + """
  const { ws, take, send } = await openSocket(url, token);
  const ring = await take((f) => f.op === "call" && f.state === "ringing");
  const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  const acceptedAt = performance.now();
  send({ op: "call_accept", ref: "accept", call: ring.call });
  const answer = await take((f) => f.ref === "accept");
  if (answer.op !== "call") throw new Error(JSON.stringify(answer));
  const pc = peer(answer, send, ring.call, caller);
  const firstFrame = new Promise((resolve) => {
    pc.ontrack = (event) => {
      if (event.track.kind !== "video") return;
      const video = document.createElement("video");
      video.muted = true;
      video.srcObject = new MediaStream([event.track]);
      document.body.appendChild(video);
      video.play();
      video.requestVideoFrameCallback(() => resolve(performance.now()));
    };
  });
  stream.getTracks().forEach((track) => pc.addTrack(track, stream));
  const offer = await take((f) => f.op === "call_signal" && f.kind === "offer");
  await pc.setRemoteDescription({ type: "offer", sdp: offer.sdp });
  await pc.setLocalDescription(await pc.createAnswer());
  const mine = pc.localDescription.sdp;
  send({ op: "call_signal", call: ring.call, to: caller, kind: "answer", sdp: mine });
  applyCandidates(take, pc);
  const shownAt = await firstFrame;
  send({ op: "call_hangup", ref: "bye", call: ring.call });
  await take((f) => f.ref === "bye");
  pc.close();
  stream.getTracks().forEach((track) => track.stop());
  ws.close();
  return shownAt - acceptedAt;
}"""
)


async def _one_call(
    caller_page: Page,
    callee_page: Page,
    ws_url: str,
    pair: tuple[SeededUser, SeededUser],
    conv: str,
) -> float:
    caller, callee = pair
    callee_side = callee_page.evaluate(
        _CALLEE, {"url": ws_url, "token": callee.token, "caller": caller.id}
    )
    ringing = asyncio.ensure_future(callee_side)
    await asyncio.sleep(0.3)  # the callee's socket is open before the invite
    caller_side = caller_page.evaluate(
        _CALLER, {"url": ws_url, "token": caller.token, "conv": conv, "callee": callee.id}
    )
    async with asyncio.timeout(CALL_TIMEOUT_S):
        connect_ms, _ = await asyncio.gather(ringing, caller_side)
    return float(connect_ms)


async def _calls(
    base_url: str, pair: tuple[SeededUser, SeededUser], conv: str, n: int
) -> list[float]:
    ws_url = base_url.replace("http://", "ws://") + "/ws"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            pages = []
            for _ in range(2):
                context = await browser.new_context()
                page = await context.new_page()
                await page.goto(base_url + "/healthz")
                pages.append(page)
            return [await _one_call(pages[0], pages[1], ws_url, pair, conv) for _ in range(n)]
        finally:
            await browser.close()


def browser_calls(
    base_url: str, pair: tuple[SeededUser, SeededUser], conv: str, n: int
) -> list[float]:
    """Milliseconds from accept to the first remote frame, for `n` calls one after another."""
    return asyncio.run(_calls(base_url, pair, conv, n))
