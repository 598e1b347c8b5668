"""The QR code for a counter, a product tag or a packing slip: where it leads, as pictures.

segno (pure Python, ISO/IEC 18004) makes the symbol; this module only decides
the URL a code carries and refuses tags that would not read back the same.
"""

from __future__ import annotations

import io
import re
from urllib.parse import urlencode

import segno

from orderchat.core.errors import BadRequest
from orderchat.core.texts import say

TAG = re.compile(r"[A-Za-z0-9._-]{1,64}")
FORMATS = ("svg", "png")


def chat_url(base_url: str, tag: str | None) -> str:
    """`{base}/chat?src=qr[&tag=…]`: what a phone opens when it scans the code."""
    if tag is not None and not TAG.fullmatch(tag):
        raise BadRequest(say("consults.qr_tag_invalid"))
    query = {"src": "qr", **({"tag": tag} if tag else {})}
    return f"{base_url.rstrip('/')}/chat?{urlencode(query)}"


def qr_image(url: str, kind: str, scale: int = 8) -> bytes:
    """The code as an SVG or PNG; error correction M survives a worn label."""
    if kind not in FORMATS:
        raise BadRequest(say("consults.qr_format_invalid", formats=list(FORMATS)))
    code = segno.make(url, error="m", micro=False)
    out = io.BytesIO()
    code.save(out, kind=kind, scale=scale, border=4)
    return out.getvalue()
