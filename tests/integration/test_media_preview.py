"""Previews made from real media files, in process and through the subprocess entry point.

The server trusts exactly two things from the preview process: the files it
leaves in OUTDIR and the one JSON line it prints. These tests check both against
files produced by real encoders (tests/media_samples.py).
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import wave
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import av
import orjson
import pytest
from PIL import Image

from orderchat.media.preview import PreviewError, PreviewResult, make_previews
from orderchat.media.processor import PreviewLimits, run_preview
from tests import media_samples

CLI_TIMEOUT_S = 60


def _preview(tmp_path: Path, data: bytes, mime: str) -> tuple[PreviewResult, Path]:
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    return make_previews(source, mime, out_dir), out_dir


def _files(out_dir: Path) -> list[str]:
    """Everything in OUTDIR, temporary files included: none may be left behind."""
    return sorted(path.name for path in out_dir.iterdir())


def _top_boxes(path: Path) -> list[str]:
    data = path.read_bytes()
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        boxes.append(kind.decode("latin-1"))
        if size < 8:
            break
        offset += size
    return boxes


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "orderchat.media.preview", *args],
        capture_output=True,
        timeout=CLI_TIMEOUT_S,
        cwd=cwd,
        check=False,
    )


# --- pictures -----------------------------------------------------------------


def test_exif_orientation_6_is_displayed_upright(tmp_path: Path) -> None:
    result, out_dir = _preview(tmp_path, media_samples.jpeg(64, 48, orientation=6), "image/jpeg")
    assert (result.width, result.height) == (48, 64)
    assert (result.preview_file, result.preview_type) == ("preview.jpg", "image/jpeg")
    assert _files(out_dir) == ["preview.jpg"]
    with Image.open(out_dir / "preview.jpg") as thumb:
        assert thumb.format == "JPEG"
        assert thumb.size == (48, 64)
        rgb = thumb.convert("RGB")
        # Orientation 6 turns the picture clockwise: the stored top-left mark is now top-right.
        assert sum(rgb.getpixel((44, 3))) < 120
        red, green, _ = rgb.getpixel((3, 3))
        assert red > 150 and green < 80


def test_thumbnail_fits_480_and_keeps_the_aspect_ratio(tmp_path: Path) -> None:
    result, out_dir = _preview(tmp_path, media_samples.jpeg(1200, 900), "image/jpeg")
    assert (result.width, result.height) == (1200, 900)
    with Image.open(out_dir / "preview.jpg") as thumb:
        assert thumb.size == (480, 360)


def test_small_picture_is_never_upscaled(tmp_path: Path) -> None:
    result, out_dir = _preview(tmp_path, media_samples.png(32, 20), "image/png")
    assert (result.width, result.height) == (32, 20)
    assert result.preview_type == "image/jpeg"
    with Image.open(out_dir / "preview.jpg") as thumb:
        assert thumb.size == (32, 20)


def test_transparent_png_gets_a_png_preview(tmp_path: Path) -> None:
    result, out_dir = _preview(tmp_path, media_samples.png(alpha=True), "image/png")
    assert (result.preview_file, result.preview_type) == ("preview.png", "image/png")
    assert _files(out_dir) == ["preview.png"]
    with Image.open(out_dir / "preview.png") as thumb:
        assert thumb.format == "PNG"
        assert thumb.mode == "RGBA"
        assert thumb.getpixel((0, 0))[3] == 0


def test_animated_gif_previews_its_first_frame(tmp_path: Path) -> None:
    result, out_dir = _preview(tmp_path, media_samples.gif_animated(), "image/gif")
    assert (result.width, result.height) == (40, 40)
    assert result.duration_ms is None
    with Image.open(out_dir / "preview.jpg") as thumb:
        assert thumb.size == (40, 40)
        red, green, blue = thumb.convert("RGB").getpixel((2, 20))
        assert red > 200 and green < 60 and blue < 60  # frame 0 paints the left strip red


# --- audio --------------------------------------------------------------------


def _check_peaks(peaks: list[int] | None) -> None:
    assert peaks is not None
    assert len(peaks) == 64
    assert all(isinstance(p, int) and 0 <= p <= 100 for p in peaks)
    # The samples are a steady tone at half of full scale.
    assert all(35 <= p <= 65 for p in peaks), peaks


@pytest.mark.parametrize(
    ("make", "mime", "seconds"),
    [
        (media_samples.voice_webm, "audio/webm", 1.0),
        (media_samples.voice_webm, "video/webm", 1.5),  # how Chromium labels a voice recording
        (media_samples.voice_ogg, "audio/ogg", 1.0),
        (media_samples.wav, "audio/x-wav", 2.0),
    ],
)
def test_voice_gets_an_aac_playback_copy(
    tmp_path: Path, make: Callable[[float], bytes], mime: str, seconds: float
) -> None:
    result, out_dir = _preview(tmp_path, make(seconds), mime)
    assert (result.playback_file, result.playback_type) == ("playback.m4a", "audio/mp4")
    assert result.preview_file is None
    assert result.width is None and result.height is None
    assert result.duration_ms is not None
    assert abs(result.duration_ms - seconds * 1000) <= 100
    _check_peaks(result.peaks)
    assert _files(out_dir) == ["playback.m4a"]
    playback = out_dir / "playback.m4a"
    boxes = _top_boxes(playback)
    assert boxes[0] == "ftyp"
    assert boxes.index("moov") < boxes.index("mdat")  # faststart: plays while downloading
    with av.open(str(playback)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac"
        assert stream.codec_context.channels == 1
        rate = stream.codec_context.sample_rate
        decoded = sum(frame.samples for frame in container.decode(stream))
    assert abs(decoded / rate - seconds) <= 0.1


@pytest.mark.parametrize(
    ("make", "mime"),
    [(media_samples.voice_m4a, "audio/mp4"), (media_samples.mp3, "audio/mpeg")],
    ids=["m4a", "mp3"],
)
def test_aac_in_mp4_and_mp3_need_no_playback_copy(
    tmp_path: Path, make: Callable[[float], bytes], mime: str
) -> None:
    result, out_dir = _preview(tmp_path, make(1.0), mime)
    assert result.playback_file is None and result.playback_type is None
    assert result.duration_ms is not None
    assert abs(result.duration_ms - 1000) <= 100
    _check_peaks(result.peaks)
    assert _files(out_dir) == []


def test_peaks_follow_the_loudness_over_time(tmp_path: Path) -> None:
    rate = 8000
    loud = media_samples.tone_pcm(0.5, rate, amplitude=0.9)
    silence = bytes(len(loud))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(loud + silence)
    result, _ = _preview(tmp_path, buf.getvalue(), "audio/x-wav")
    assert result.peaks is not None
    assert all(85 <= p <= 95 for p in result.peaks[:31]), result.peaks
    assert all(p <= 2 for p in result.peaks[33:]), result.peaks
    assert result.duration_ms == 1000


# --- video --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "mime", "duration_ms"),
    [
        (media_samples.video_mp4(2.0), "video/mp4", 2000),
        (media_samples.video_webm(1.0), "video/webm", 1000),  # no duration in the header
        (media_samples.video_mp4(0.5), "video/mp4", 500),  # shorter than the poster time
    ],
    ids=["mp4", "webm", "short-mp4"],
)
def test_video_gets_a_poster_duration_and_size(
    tmp_path: Path, data: bytes, mime: str, duration_ms: int
) -> None:
    result, out_dir = _preview(tmp_path, data, mime)
    assert (result.width, result.height) == (160, 120)
    assert result.duration_ms is not None
    assert abs(result.duration_ms - duration_ms) <= 100
    assert (result.preview_file, result.preview_type) == ("poster.jpg", "image/jpeg")
    assert result.peaks is None and result.playback_file is None
    assert _files(out_dir) == ["poster.jpg"]
    with Image.open(out_dir / "poster.jpg") as poster:
        assert poster.format == "JPEG"
        assert poster.size == (160, 120)


def test_rotated_video_is_measured_and_shown_upright(tmp_path: Path) -> None:
    result, out_dir = _preview(tmp_path, media_samples.video_mp4(2.0, rotation=90), "video/mp4")
    assert (result.width, result.height) == (120, 160)
    with Image.open(out_dir / "poster.jpg") as poster:
        assert poster.size == (120, 160)
        rgb = poster.convert("RGB")
    # The frame at 1 s has a yellow square in the upper third, 70 px from the left
    # edge; a quarter turn counter-clockwise puts it on the left, halfway down.
    assert sum(rgb.getpixel((50, 80))) > 400
    assert sum(rgb.getpixel((80, 50))) < 250
    assert sum(rgb.getpixel((50, 20))) < 250


# --- PDF ----------------------------------------------------------------------


def test_pdf_first_page_and_page_count(tmp_path: Path) -> None:
    result, out_dir = _preview(tmp_path, media_samples.pdf(pages=2), "application/pdf")
    assert result.pages == 2
    assert (result.preview_file, result.preview_type) == ("page.png", "image/png")
    assert _files(out_dir) == ["page.png"]
    with Image.open(out_dir / "page.png") as page:
        assert page.format == "PNG"
        assert max(page.size) == 800 and page.size[0] < page.size[1]  # a portrait page


# --- refusals -----------------------------------------------------------------

REFUSED = [
    pytest.param(media_samples.corrupt_jpeg(), "image/jpeg", id="corrupt-jpeg"),
    pytest.param(media_samples.svg_with_script(), "image/svg+xml", id="svg"),
    pytest.param(media_samples.png_bomb(), "image/png", id="decompression-bomb"),
    pytest.param(media_samples.html_disguised(), "image/png", id="html-as-png"),
    pytest.param(media_samples.random_bytes(50_000), "video/mp4", id="random-as-video"),
    pytest.param(media_samples.random_bytes(50_000, seed=1), "audio/webm", id="random-as-audio"),
    pytest.param(media_samples.png(), "video/mp4", id="png-as-video"),
    pytest.param(
        b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n", "video/mp4", id="playlist"
    ),
    pytest.param(b"%PDF-1.7\n" + media_samples.random_bytes(2000), "application/pdf", id="bad-pdf"),
    pytest.param(b"just words\n", "text/plain", id="text"),
]


@pytest.mark.parametrize(("data", "mime"), REFUSED)
def test_unusable_files_fail_with_a_reason(tmp_path: Path, data: bytes, mime: str) -> None:
    with pytest.raises(PreviewError) as caught:
        _preview(tmp_path, data, mime)
    reason = str(caught.value)
    assert len(reason) > 10
    assert str(tmp_path) not in reason
    assert _files(tmp_path / "out") == []


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    with pytest.raises(PreviewError, match="decompression bomb"):
        _preview(tmp_path, media_samples.png_bomb(), "image/png")


def test_a_text_type_is_named_in_the_reason(tmp_path: Path) -> None:
    with pytest.raises(PreviewError, match="no preview for text/plain"):
        _preview(tmp_path, b"hello", "text/plain")


# --- the subprocess entry point --------------------------------------------------


@pytest.mark.parametrize(
    ("data", "mime", "expected"),
    [
        (media_samples.jpeg(orientation=6), "image/jpeg", {"width": 48, "height": 64}),
        (media_samples.voice_webm(), "video/webm", {"playback_file": "playback.m4a"}),
    ],
    ids=["jpeg", "voice"],
)
def test_cli_prints_one_json_line(
    tmp_path: Path, data: bytes, mime: str, expected: dict[str, object]
) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    done = _run_cli(str(source), mime, str(out_dir), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and done.stdout.endswith(b"\n")
    reply = orjson.loads(lines[0])
    assert reply["ok"] is True
    assert set(reply) == {"ok"} | {field.name for field in fields(PreviewResult)}
    assert expected.items() <= reply.items()
    assert (out_dir / (reply["preview_file"] or reply["playback_file"])).is_file()


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (media_samples.corrupt_jpeg(), "image/jpeg"),
        (media_samples.svg_with_script(), "image/svg+xml"),
        (media_samples.random_bytes(50_000), "video/mp4"),
    ],
    ids=["corrupt-jpeg", "svg", "random-as-video"],
)
def test_cli_reports_failure_as_json(tmp_path: Path, data: bytes, mime: str) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    done = _run_cli(str(source), mime, str(out_dir), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert b"Traceback" not in done.stdout and b"Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    reply = orjson.loads(lines[0])
    assert reply["ok"] is False
    assert isinstance(reply["error"], str) and reply["error"]
    assert set(reply) == {"ok", "error"}
    assert _files(out_dir) == []


def test_cli_bad_arguments_exit_2(tmp_path: Path) -> None:
    done = _run_cli("only-one-argument", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == b""
    missing = _run_cli(str(tmp_path / "missing"), "image/png", str(tmp_path), cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stdout == b""


def _noisy_jpeg() -> bytes:
    """A picture whose preview cannot compress below a few kilobytes."""
    picture = Image.effect_noise((1200, 900), 80).convert("RGB")
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_cli_keeps_to_its_output_limit(tmp_path: Path) -> None:
    source = tmp_path / "source.jpg"
    source.write_bytes(_noisy_jpeg())
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    done = _run_cli(str(source), "image/jpeg", str(out_dir), "--max-output-bytes=512", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    reply = orjson.loads(done.stdout.splitlines()[-1])
    assert reply["ok"] is False
    assert _files(out_dir) == []


async def test_the_server_s_limits_reach_the_preview_maker(tmp_path: Path) -> None:
    source = tmp_path / "source.jpg"
    source.write_bytes(_noisy_jpeg())
    roomy_dir, cramped_dir = tmp_path / "roomy", tmp_path / "cramped"
    roomy_dir.mkdir()
    cramped_dir.mkdir()
    roomy = await run_preview(source, "image/jpeg", roomy_dir, PreviewLimits())
    assert roomy.ok, roomy.error
    cramped = await run_preview(source, "image/jpeg", cramped_dir, PreviewLimits(output_bytes=512))
    assert not cramped.ok and cramped.error
