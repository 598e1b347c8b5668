"""Previews of one uploaded file: thumbnails, poster frames, waveforms, playback copies.

Decoding files that strangers upload is where media servers get hurt: a crafted
picture can claim gigapixels, a broken video can send a C decoder into a loop or
a crash. So the server never decodes in its own process. It runs this module as
`python -m orderchat.media.preview SOURCE MIME OUTDIR` once per file, under a
time and memory limit, and reads one JSON line from its stdout. Whatever goes
wrong in here costs one preview, never the server.
"""

from __future__ import annotations

import argparse
import errno
import io
import os
import resource
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from fractions import Fraction
from itertools import chain
from pathlib import Path
from typing import cast

import av
import orjson
import pypdfium2 as pdfium
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.codec.context import ThreadType
from av.container import InputContainer
from av.stream import Disposition
from av.video.frame import VideoFrame
from av.video.stream import VideoStream
from PIL import ExifTags, Image, ImageOps

THUMB_BOX = 480
PAGE_BOX = 800
PEAK_COUNT = 64
POSTER_AT_S = 1.0

# Formats that cameras, phones, browsers and scanners produce. Anything else that
# Pillow knows (EPS hands the file to Ghostscript, TGA has no signature and so
# "recognises" any bytes) is refused rather than risked.
_PICTURE_FORMATS = (
    "JPEG", "PNG", "GIF", "WEBP", "AVIF", "BMP", "TIFF", "ICO", "JPEG2000", "PSD", "QOI",
)  # fmt: skip
# Demuxers for real audio and video files. FFmpeg would otherwise also follow
# playlists (HLS, concat) found in a file, and read other files or URLs.
_DEMUXERS = "matroska,mov,ogg,wav,mp3,flac,aac,avi,mpegts,mpeg,flv,asf,w64,aiff,caf,amr"
_AAC_RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000})
# Peaks are first taken over blocks this long, then grouped into the 64 slices:
# a voice message shorter than a second still gets a slice-accurate waveform.
_BLOCKS_PER_S = 200
_MAX_BLOCKS = 4096  # even: blocks merge in pairs


class PreviewError(Exception):
    """A file that gets no preview, with a reason a person can read."""


@dataclass(frozen=True, slots=True)
class PreviewResult:
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    pages: int | None = None
    peaks: list[int] | None = None
    preview_file: str | None = None
    preview_type: str | None = None
    playback_file: str | None = None
    playback_type: str | None = None


@contextmanager
def _atomic(out_dir: Path, name: str) -> Iterator[Path]:
    """A temporary path that becomes out_dir/name only once fully written.

    The server may serve a preview the moment its name appears; a half-written
    file, from a crash or a killed process, must never be that file.
    """
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, out_dir / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _save_picture(picture: Image.Image, out_dir: Path, name: str, kind: str) -> None:
    """Encode in memory, then write: Pillow writes to a file's descriptor itself and
    does not notice a short write, so a preview cut off by the output limit would
    be announced as made."""
    encoded = io.BytesIO()
    if kind == "PNG":
        picture.save(encoded, "PNG", optimize=True)
    else:
        picture.save(encoded, "JPEG", quality=85, optimize=True)
    with _atomic(out_dir, name) as tmp:
        tmp.write_bytes(encoded.getvalue())


def _fit(width: int, height: int, box: int) -> tuple[int, int]:
    scale = min(1.0, box / width, box / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _extrema(img: Image.Image) -> tuple[float, float]:
    return cast(tuple[float, float], img.getextrema())


# --- pictures ---------------------------------------------------------------


def _has_alpha(img: Image.Image) -> bool:
    """True when some pixel is actually see-through; many RGBA files are fully opaque."""
    if img.mode not in ("RGBA", "LA", "PA", "RGBa", "La") and "transparency" not in img.info:
        return False
    return _extrema(img.convert("RGBA").getchannel("A"))[0] < 255


def _image(source: Path, mime: str, out_dir: Path) -> PreviewResult:
    if mime == "image/svg+xml":
        raise PreviewError("SVG pictures get no preview: they are documents that can run scripts")
    try:
        with Image.open(source, formats=_PICTURE_FORMATS) as img:
            width, height = img.size
            if img.getexif().get(ExifTags.Base.Orientation) in (5, 6, 7, 8):
                width, height = height, width
            # JPEG decodes straight at a fraction of its size, for speed and memory.
            img.draft("RGB", (THUMB_BOX, THUMB_BOX))
            pic = ImageOps.exif_transpose(img)
        alpha = _has_alpha(pic)
        pic = pic.convert("RGBA" if alpha else "RGB")
        pic.thumbnail((THUMB_BOX, THUMB_BOX), Image.Resampling.LANCZOS)
    except Image.DecompressionBombError as exc:
        raise PreviewError(f"the picture is too large to preview: {exc}") from exc
    except Exception as exc:
        raise PreviewError(f"not a picture Pillow can read: {exc}") from exc
    name, kind = ("preview.png", "image/png") if alpha else ("preview.jpg", "image/jpeg")
    _save_picture(pic, out_dir, name, "PNG" if alpha else "JPEG")
    return PreviewResult(width=width, height=height, preview_file=name, preview_type=kind)


# --- PDF --------------------------------------------------------------------


def _pdf(source: Path, out_dir: Path) -> PreviewResult:
    try:
        doc = pdfium.PdfDocument(source)
    except pdfium.PdfiumError as exc:
        raise PreviewError(f"not a PDF that can be opened (broken or encrypted): {exc}") from exc
    try:
        pages = len(doc)
        if pages < 1:
            raise PreviewError("the PDF has no pages")
        page = doc[0]
        page_w, page_h = page.get_size()
        if page_w <= 0 or page_h <= 0:
            raise PreviewError("the PDF's first page has no size")
        img = page.render(scale=min(PAGE_BOX / page_w, PAGE_BOX / page_h)).to_pil()
        img.thumbnail((PAGE_BOX, PAGE_BOX), Image.Resampling.LANCZOS)
    except pdfium.PdfiumError as exc:
        raise PreviewError(f"the PDF's first page cannot be rendered: {exc}") from exc
    finally:
        doc.close()
    _save_picture(img, out_dir, "page.png", "PNG")
    return PreviewResult(pages=pages, preview_file="page.png", preview_type="image/png")


# --- audio ------------------------------------------------------------------


class _Peaks:
    """Loudest sample per block, grouped into equal time slices at the end.

    The length of a recording is often known only once it is decoded (browsers
    write WebM without a duration), so slices cannot be laid out in advance.
    Blocks start short, for short voice messages, and double in length whenever
    there are too many of them, so a long recording costs few Python steps;
    Pillow's getextrema scans the samples of a block in C.
    """

    def __init__(self, channels: int, rate: int) -> None:
        self._width = channels * max(1, rate // _BLOCKS_PER_S)  # floats per block
        self._pending = bytearray()
        self._blocks: list[float] = []

    def add(self, samples: bytes) -> None:
        self._pending += samples
        while rows := min(len(self._pending) // (4 * self._width), _MAX_BLOCKS - len(self._blocks)):
            size = rows * 4 * self._width
            self._scan(bytes(self._pending[:size]), self._width, rows)
            del self._pending[:size]
            if len(self._blocks) == _MAX_BLOCKS:
                pairs = zip(self._blocks[0::2], self._blocks[1::2], strict=True)
                self._blocks = [max(pair) for pair in pairs]
                self._width *= 2

    def _scan(self, data: bytes, width: int, rows: int) -> None:
        img = Image.frombuffer("F", (width, rows), data, "raw", "F", 0, 1)
        for row in range(rows):
            low, high = _extrema(img.crop((0, row, width, row + 1)))
            self._blocks.append(max(-low, high))

    def result(self) -> list[int]:
        if self._pending:
            self._scan(bytes(self._pending), len(self._pending) // 4, 1)
            self._pending.clear()
        blocks = self._blocks or [0.0]
        count = len(blocks)
        peaks = []
        for i in range(PEAK_COUNT):
            first = i * count // PEAK_COUNT
            last = max(first + 1, (i + 1) * count // PEAK_COUNT)
            peaks.append(round(min(1.0, max(blocks[first:last])) * 100))
        return peaks


def _browser_playable(container: InputContainer, codec: str) -> bool:
    """AAC in MP4 and MP3 play in every browser; anything else gets an AAC copy."""
    demuxer = container.format.name.split(",")
    return (codec == "aac" and "mp4" in demuxer) or (codec == "mp3" and "mp3" in demuxer)


def _decode_audio(
    container: InputContainer,
    layout: str,
    rate: int,
    sink: Callable[[AudioFrame], None] | None,
) -> tuple[int, list[int]]:
    """Decodes the first audio stream once, for peaks, length and an optional copy."""
    peaks = _Peaks(1 if layout == "mono" else 2, rate)
    resampler = AudioResampler(format="flt", layout=layout, rate=rate)
    samples = 0
    for decoded in chain(container.decode(container.streams.audio[0]), [None]):
        for frame in resampler.resample(decoded):
            peaks.add(bytes(frame.planes[0])[: frame.samples * len(frame.layout.channels) * 4])
            frame.pts = samples
            frame.time_base = Fraction(1, rate)
            samples += frame.samples
            if sink is not None:
                sink(frame)
    if samples == 0:
        raise PreviewError("the file contains no audio that can be decoded")
    return samples, peaks.result()


def _audio(container: InputContainer, out_dir: Path) -> PreviewResult:
    if not container.streams.audio:
        raise PreviewError("the file has no audio stream")
    ctx = container.streams.audio[0].codec_context
    layout = "mono" if ctx.channels == 1 else "stereo"
    rate = ctx.sample_rate if ctx.sample_rate in _AAC_RATES else 48_000
    if _browser_playable(container, ctx.codec.canonical_name):
        samples, peaks = _decode_audio(container, layout, rate, None)
        return PreviewResult(duration_ms=round(samples * 1000 / rate), peaks=peaks)
    with (
        _atomic(out_dir, "playback.m4a") as tmp,
        av.open(str(tmp), "w", format="ipod", options={"movflags": "+faststart"}) as out,
    ):
        encoder = out.add_stream("aac", rate=rate, layout=layout)
        encoder.bit_rate = 64_000 if layout == "mono" else 96_000
        samples, peaks = _decode_audio(
            container, layout, rate, lambda frame: out.mux(encoder.encode(frame))
        )
        out.mux(encoder.encode(None))
    return PreviewResult(
        duration_ms=round(samples * 1000 / rate),
        peaks=peaks,
        playback_file="playback.m4a",
        playback_type="audio/mp4",
    )


# --- video ------------------------------------------------------------------


def _poster(frame: VideoFrame, stream: VideoStream) -> tuple[Image.Image, int, int]:
    """The frame as a viewer sees it: pixel aspect ratio and display rotation applied."""
    width, height = frame.width, frame.height
    sar = stream.sample_aspect_ratio
    if sar and sar != 1:
        width = max(1, round(width * sar))
    fit_w, fit_h = _fit(width, height, THUMB_BOX)
    rgb = frame.reformat(width=fit_w, height=fit_h, format="rgb24", interpolation="AREA")
    plane = rgb.planes[0]
    img = Image.frombuffer("RGB", (fit_w, fit_h), bytes(plane), "raw", "RGB", plane.line_size, 1)
    turn = round(frame.rotation / 90) % 4  # counter-clockwise quarter turns, as is Pillow's
    if turn:
        img = img.rotate(90 * turn, expand=True)
    if turn % 2:
        width, height = height, width
    return img, width, height


def _video(container: InputContainer, out_dir: Path) -> PreviewResult:
    # A cover picture in an audio file is a "video" stream too, but not a video.
    videos = container.streams.video
    stream = next((s for s in videos if not s.disposition & Disposition.attached_pic), None)
    if stream is None:
        if container.streams.audio:  # a voice message recorded as video/webm or video/mp4
            return _audio(container, out_dir)
        raise PreviewError("the file has neither video nor audio")
    stream.thread_type = ThreadType.AUTO
    time_base = stream.time_base or Fraction(1, 1000)
    start = stream.start_time or 0
    duration_s: float | None = None
    if container.duration is not None and container.duration > 0:
        duration_s = container.duration / av.time_base
    elif stream.duration:
        duration_s = float(stream.duration * time_base)
    first: VideoFrame | None = None
    chosen: VideoFrame | None = None
    end = 0
    # One pass: decode up to the poster frame, then (only when the header gave no
    # duration, as in browser recordings) read on without decoding to find the end.
    for packet in container.demux(stream):
        if packet.pts is not None:
            end = max(end, packet.pts + (packet.duration or 0))
        if chosen is None:
            for frame in packet.decode():
                first = first or frame
                if frame.pts is not None and (frame.pts - start) * time_base >= POSTER_AT_S:
                    chosen = frame
                    break
        elif duration_s is not None:
            break
    chosen = chosen or first
    if chosen is None:
        raise PreviewError("the video has no frame that can be decoded")
    if duration_s is None:
        duration_s = float((end - start) * time_base)
    img, width, height = _poster(chosen, stream)
    _save_picture(img.convert("RGB"), out_dir, "poster.jpg", "JPEG")
    return PreviewResult(
        width=width,
        height=height,
        duration_ms=round(duration_s * 1000),
        preview_file="poster.jpg",
        preview_type="image/jpeg",
    )


# --- entry points -------------------------------------------------------------


def _open_media(source: Path) -> InputContainer:
    try:
        return av.open(
            str(source),
            container_options={"format_whitelist": _DEMUXERS, "protocol_whitelist": "file"},
            metadata_errors="ignore",
        )
    except av.FFmpegError as exc:
        if exc.errno == errno.EINVAL:  # what FFmpeg says for a demuxer not on the list
            raise PreviewError("not an audio or video format that gets previews") from exc
        reason = exc.strerror or exc
        raise PreviewError(f"not an audio or video file FFmpeg can read: {reason}") from exc


def make_previews(source: Path, mime: str, out_dir: Path) -> PreviewResult:
    """Makes the previews of one file of the verified type `mime` into out_dir.

    Reasons end up in front of users, so they never name where the server keeps files.
    """
    try:
        return _make_previews(source, mime, out_dir)
    except PreviewError as exc:
        raise PreviewError(_scrub(str(exc), source)) from exc.__cause__


def _scrub(reason: str, source: Path) -> str:
    return reason.replace(f" '{source}'", "").replace(str(source), "the file")


def _make_previews(source: Path, mime: str, out_dir: Path) -> PreviewResult:
    family = mime.partition("/")[0]
    if mime == "application/pdf":
        return _pdf(source, out_dir)
    if family == "image":
        return _image(source, mime, out_dir)
    if family not in ("audio", "video"):
        raise PreviewError(f"no preview for {mime}")
    with _open_media(source) as container:
        try:
            return _audio(container, out_dir) if family == "audio" else _video(container, out_dir)
        except av.FFmpegError as exc:
            raise PreviewError(f"the {family} cannot be decoded: {exc.strerror or exc}") from exc


def _limit_self(memory_bytes: int | None, cpu_s: int | None, output_bytes: int | None) -> None:
    """The limits are set here, before any file is opened, rather than by the server
    between fork and exec: Python code run in a forked child of a threaded server can
    hang on locks or on objects whose threads stayed in the parent."""
    for which, value in (
        (resource.RLIMIT_AS, memory_bytes),
        (resource.RLIMIT_CPU, cpu_s),
        (resource.RLIMIT_FSIZE, output_bytes),
    ):
        if value is not None:
            resource.setrlimit(which, (value, value))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m orderchat.media.preview",
        description="Make the previews of one file; prints one JSON line.",
    )
    parser.add_argument("source", type=Path)
    parser.add_argument("mime")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--max-memory-bytes", type=int, help="address space limit")
    parser.add_argument("--max-cpu-s", type=int, help="CPU time limit")
    parser.add_argument("--max-output-bytes", type=int, help="largest file it may write")
    args = parser.parse_args(argv)
    _limit_self(args.max_memory_bytes, args.max_cpu_s, args.max_output_bytes)
    if not args.source.is_file():
        parser.error(f"no such file: {args.source}")
    if not args.out_dir.is_dir():
        parser.error(f"no such directory: {args.out_dir}")
    mime = args.mime.partition(";")[0].strip().lower()
    # The caller reads stdout as one JSON line. Point file descriptor 1 at stderr
    # while the decoders run, so that nothing a C library prints can end up there.
    sys.stdout.flush()
    real_stdout = os.dup(1)
    os.dup2(2, 1)
    try:
        result = make_previews(args.source, mime, args.out_dir)
        reply: dict[str, object] = {"ok": True, **asdict(result)}
    except PreviewError as exc:
        reply = {"ok": False, "error": str(exc)}
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        reason = _scrub(f"preview failed: {type(exc).__name__}: {exc}", args.source)
        reply = {"ok": False, "error": reason}
    finally:
        sys.stdout.flush()
        os.dup2(real_stdout, 1)
        os.close(real_stdout)
    sys.stdout.buffer.write(orjson.dumps(reply) + b"\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
