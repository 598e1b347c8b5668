"""A progress bar on stderr for the long-running commands (verify, export).

Drawn only when stderr is a terminal: piped into a log or a cron mail, a
redrawn line is noise, so nothing is written there at all. Redraws are
limited to a few a second, since a walk over millions of links reports far
more often than anyone can read.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

BAR_CELLS = 28
REDRAW_S = 0.1


class ProgressBar:
    """`update(done, total)` as work goes on, `close()` at the end; total 0 means unknown."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self._stream = sys.stderr if stream is None else stream
        self._shown = self._stream.isatty()
        self._drawn_at = 0.0
        self._width = 0
        # Exports report packing progress from a worker thread.
        self._lock = threading.Lock()

    def update(self, done: int, total: int = 0, label: str | None = None) -> None:
        if not self._shown:
            return
        with self._lock:
            if label is not None:
                self.label = label
            now = time.monotonic()
            if now - self._drawn_at < REDRAW_S and (total == 0 or done < total):
                return
            self._drawn_at = now
            self._draw(self.render(self.label, done, total))

    @staticmethod
    def render(label: str, done: int, total: int) -> str:
        """One line of the bar: `label [#####.....]  45%  12,345/27,000` (or a count)."""
        if total <= 0:
            return f"{label}  {done:,}"
        share = min(done / total, 1.0)
        filled = int(share * BAR_CELLS)
        bar = "#" * filled + "." * (BAR_CELLS - filled)
        return f"{label} [{bar}] {share:4.0%}  {done:,}/{total:,}"

    def _draw(self, line: str) -> None:
        padding = " " * max(0, self._width - len(line))
        self._stream.write("\r" + line + padding)
        self._stream.flush()
        self._width = len(line)

    def close(self) -> None:
        """Clear the bar, so that what the command prints next starts on a clean line."""
        if self._shown and self._width:
            with self._lock:
                self._stream.write("\r" + " " * self._width + "\r")
                self._stream.flush()
                self._width = 0
