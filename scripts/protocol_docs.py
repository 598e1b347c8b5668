"""Rewrite the frame reference in docs/protocol.md from the frame classes.

Run after changing a frame in `src/orderchat/protocol`; a unit test fails
while the document's copy differs from the definitions.
"""

from __future__ import annotations

from pathlib import Path

from orderchat.protocol.reference import replace_in

DOCS = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"


def main() -> None:
    DOCS.write_text(replace_in(DOCS.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"rewrote the frame reference in {DOCS}")


if __name__ == "__main__":
    main()
