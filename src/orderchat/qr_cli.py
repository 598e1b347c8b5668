"""`orderchat qr`: the QR code that opens the shop's pre-sales chat, for printing.

For the counter, a product tag or a packing slip: `--tag` names where it hangs,
and every consult opened through it shows that tag to staff (docs/consults.md §1).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from orderchat.core.errors import BadRequest
from orderchat.core.qr import FORMATS, chat_url, qr_image


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orderchat qr", description="write the QR code of the shop's /chat page"
    )
    parser.add_argument("--out", type=Path, required=True, help="FILE.png or FILE.svg")
    parser.add_argument("--tag", help="where the code hangs: counter, tag-TNT-2P, slip …")
    parser.add_argument(
        "--public-url",
        default=os.environ.get("ORDERCHAT_PUBLIC_URL", "http://127.0.0.1:8000"),
        help="the address people open OrderChat at (default: $ORDERCHAT_PUBLIC_URL)",
    )
    parser.add_argument("--scale", type=int, default=10, help="pixels per module (PNG)")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    kind = args.out.suffix.lower().lstrip(".")
    if kind not in FORMATS:
        print(f"orderchat qr: --out must end in .{' or .'.join(FORMATS)}", file=sys.stderr)
        return 2
    if not 1 <= args.scale <= 100:
        print("orderchat qr: --scale is 1 to 100", file=sys.stderr)
        return 2
    try:
        url = chat_url(args.public_url, args.tag)
    except BadRequest as exc:
        print(f"orderchat qr: {exc.text.render('en')}", file=sys.stderr)
        return 2
    args.out.write_bytes(qr_image(url, kind, args.scale))
    print(f"{args.out}: {url}")
    return 0
