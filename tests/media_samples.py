"""Small real media files, made on the spot, for tests of uploads and previews.

Every file is produced by the same libraries a browser's output would be read
with (Pillow, PyAV's bundled ffmpeg), so a preview test exercises real decoders
and nothing needs to be downloaded or checked into the repository. Outputs are
deterministic where the muxers allow it, a few KB each, and take milliseconds.
"""

from __future__ import annotations

import io
import math
import random
import struct
import wave
import zlib
from fractions import Fraction

import av
from av.audio.frame import AudioFrame
from av.video.frame import VideoFrame
from PIL import Image, ImageDraw

TONE_HZ = 440.0
AUDIO_RATE = 48_000
# Muxer options that keep random ids and the encoder version out of the output.
_BITEXACT = {"fflags": "+bitexact"}


def jpeg(
    width: int = 64,
    height: int = 48,
    orientation: int | None = None,
    color: tuple[int, int, int] = (200, 30, 30),
) -> bytes:
    """A JPEG whose stored pixels are width x height; EXIF orientation 5-8 swap the display."""
    img = Image.new("RGB", (width, height), color)
    # A mark in the stored top-left corner shows where a rotation moved it.
    ImageDraw.Draw(img).rectangle((0, 0, max(1, width // 4), max(1, height // 4)), fill=(0, 0, 0))
    buf = io.BytesIO()
    if orientation is None:
        img.save(buf, "JPEG", quality=90)
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        img.save(buf, "JPEG", quality=90, exif=exif.tobytes())
    return buf.getvalue()


def png(width: int = 32, height: int = 32, alpha: bool = False) -> bytes:
    if alpha:
        img = Image.new("RGBA", (width, height), (0, 120, 255, 0))
        ImageDraw.Draw(img).ellipse((0, 0, width - 1, height - 1), fill=(0, 120, 255, 255))
    else:
        img = Image.new("RGB", (width, height), (0, 120, 255))
        ImageDraw.Draw(img).line((0, 0, width - 1, height - 1), fill=(255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def png_bomb(side: int = 40_000) -> bytes:
    """A valid PNG header claiming side x side pixels, with almost no data behind it."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * (1 + 3 * side) * 4, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def gif_animated(frames: int = 4, size: int = 40) -> bytes:
    images = []
    for i in range(frames):
        img = Image.new("P", (size, size), 0)
        img.putpalette([255, 255, 255, 255, 0, 0, 0, 128, 0, 0, 0, 255] + [0] * (256 - 4) * 3)
        step = size // frames
        ImageDraw.Draw(img).rectangle((i * step, 0, i * step + step - 1, size - 1), fill=1 + i % 3)
        images.append(img)
    buf = io.BytesIO()
    images[0].save(buf, "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return buf.getvalue()


def tone_pcm(seconds: float, rate: int = AUDIO_RATE, amplitude: float = 0.5) -> bytes:
    """Signed 16-bit mono samples of a sine tone."""
    count = round(seconds * rate)
    peak = amplitude * 32767
    return b"".join(
        struct.pack("<h", round(peak * math.sin(2 * math.pi * TONE_HZ * n / rate)))
        for n in range(count)
    )


def _encode_audio(
    container_format: str,
    codec: str,
    seconds: float,
    bit_rate: int = 32_000,
    muxer_options: dict[str, str] | None = None,
) -> bytes:
    pcm = tone_pcm(seconds)
    buf = io.BytesIO()
    options = {**_BITEXACT, **(muxer_options or {})}
    with av.open(buf, "w", format=container_format, options=options) as out:
        stream = out.add_stream(codec, rate=AUDIO_RATE, layout="mono")
        stream.bit_rate = bit_rate
        chunk = 960  # 20 ms, what MediaRecorder hands the encoder
        total = len(pcm) // 2
        for start in range(0, total, chunk):
            samples = min(chunk, total - start)
            frame = AudioFrame(format="s16", layout="mono", samples=samples)
            frame.planes[0].update(pcm[start * 2 : (start + samples) * 2])
            frame.sample_rate = AUDIO_RATE
            frame.pts = start
            frame.time_base = Fraction(1, AUDIO_RATE)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def voice_webm(seconds: float = 1.0) -> bytes:
    """Opus in WebM, as Chromium's MediaRecorder records a voice message.

    Like MediaRecorder's output it is written as a live stream: no duration in
    the header and no cues, so a reader has to find the length by decoding.
    """
    return _encode_audio("webm", "libopus", seconds, muxer_options={"live": "1"})


def voice_m4a(seconds: float = 1.0) -> bytes:
    """AAC in MP4, as Safari records a voice message."""
    return _encode_audio("ipod", "aac", seconds, bit_rate=64_000)


def voice_ogg(seconds: float = 1.0) -> bytes:
    """Opus in Ogg, as Firefox records a voice message."""
    return _encode_audio("ogg", "libopus", seconds)


def mp3(seconds: float = 1.0) -> bytes:
    return _encode_audio("mp3", "libmp3lame", seconds, bit_rate=64_000)


def wav(seconds: float = 1.0, rate: int = 16_000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(tone_pcm(seconds, rate))
    return buf.getvalue()


def _encode_video(
    container_format: str,
    codec: str,
    seconds: float,
    width: int,
    height: int,
    fps: int = 10,
    rotation: int = 0,
    muxer_options: dict[str, str] | None = None,
) -> bytes:
    buf = io.BytesIO()
    options = {**_BITEXACT, **(muxer_options or {})}
    with av.open(buf, "w", format=container_format, options=options) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 200_000
        if rotation:
            stream.set_display_rotation(rotation)
        for i in range(max(1, round(seconds * fps))):
            img = Image.new("RGB", (width, height), (20, 20, 60))
            x = (i * 7) % max(1, width - 20)
            ImageDraw.Draw(img).rectangle((x, height // 3, x + 19, height // 3 + 19), fill="yellow")
            frame = VideoFrame.from_image(img)
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def video_mp4(
    seconds: float = 2.0, width: int = 160, height: int = 120, rotation: int = 0
) -> bytes:
    """MPEG-4 Part 2 video in MP4 (every PyAV build has this encoder; no B-frames).

    `rotation` (counter-clockwise degrees) goes into the stream's display matrix,
    as phones do for a video filmed upright: rotation=90 makes 160x120 display as 120x160.
    """
    return _encode_video("mp4", "mpeg4", seconds, width, height, rotation=rotation)


def video_webm(seconds: float = 1.0, width: int = 160, height: int = 120) -> bytes:
    """VP8 in WebM, written as a live stream (no duration in the header) like MediaRecorder's."""
    return _encode_video("webm", "libvpx", seconds, width, height, muxer_options={"live": "1"})


def pdf(pages: int = 2) -> bytes:
    images = []
    for i in range(pages):
        img = Image.new("RGB", (200, 280), "white")
        ImageDraw.Draw(img).text((20, 20), f"Page {i + 1}", fill="black")
        images.append(img)
    buf = io.BytesIO()
    images[0].save(buf, "PDF", save_all=True, append_images=images[1:], resolution=72.0)
    return buf.getvalue()


def html_disguised() -> bytes:
    """An HTML page that someone might declare as image/png."""
    return (
        b"<!DOCTYPE html>\n<html><head><title>invoice</title></head>\n"
        b"<body><script>fetch('/api/me').then(r => r.text()).then(alert)</script>"
        b"<p>Your invoice</p></body></html>\n"
    )


def svg_with_script() -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">\n'
        b'<rect width="100" height="100" fill="red"/>\n'
        b"<script>alert(document.cookie)</script>\n"
        b"</svg>\n"
    )


def corrupt_jpeg() -> bytes:
    """A JPEG start marker and header followed by garbage: it sniffs as a JPEG but won't decode."""
    head = jpeg()[:32]
    return head + random_bytes(2048, seed=7)


def random_bytes(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)
