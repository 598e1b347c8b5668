"""Runs the preview maker on one file in a child process with limits.

Decoders of pictures, audio, video and PDF are large C libraries fed with
whatever users upload. In a child process with a time, memory and file-size
limit, a malformed or hostile file can at worst kill that child: the server
records the preview as failed, and the original stays downloadable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PreviewLimits:
    timeout_s: float = 120.0
    memory_bytes: int = 3 * 1024**3
    output_bytes: int = 1024**3


@dataclass(frozen=True, slots=True)
class PreviewOutcome:
    ok: bool
    error: str | None
    fields: dict[str, Any]


async def run_preview(
    source: Path, mime: str, out_dir: Path, limits: PreviewLimits
) -> PreviewOutcome:
    """Make the previews of `source` into `out_dir`; never raises for a bad file."""

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "orderchat.media.preview",
        str(source),
        mime,
        str(out_dir),
        f"--max-memory-bytes={limits.memory_bytes}",
        f"--max-cpu-s={int(limits.timeout_s) + 5}",
        f"--max-output-bytes={limits.output_bytes}",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        # Not asyncio.wait_for: on Python 3.11 it loses a cancellation that arrives as
        # the child finishes, and then a shutdown waits for the preview task forever.
        async with asyncio.timeout(limits.timeout_s):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return PreviewOutcome(
            False, f"making the preview took longer than {limits.timeout_s:g} s", {}
        )
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        raise
    if process.returncode != 0:
        logger.warning(
            "preview of %s exited %s: %s", source.name, process.returncode, stderr[-500:]
        )
        return PreviewOutcome(False, "the preview maker could not read this file", {})
    try:
        answer = orjson.loads(stdout.strip().splitlines()[-1])
    except (orjson.JSONDecodeError, IndexError):
        return PreviewOutcome(False, "the preview maker gave no answer", {})
    if not isinstance(answer, dict) or not answer.get("ok"):
        error = answer.get("error") if isinstance(answer, dict) else None
        return PreviewOutcome(False, str(error or "no preview could be made"), {})
    answer.pop("ok", None)
    return PreviewOutcome(True, None, answer)
