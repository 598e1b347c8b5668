"""The limits every media job is configured with, read once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from orderchat.media.processor import PreviewLimits


@dataclass(frozen=True, slots=True)
class MediaLimits:
    max_upload_bytes: int
    quota_bytes: int
    upload_ttl_s: float
    preview: PreviewLimits
    # What a visitor no order vouched for may upload (docs/consults.md §6).
    visitor_max_upload_bytes: int = 10 * 1024**2
