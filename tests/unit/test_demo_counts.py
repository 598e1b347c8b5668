"""The README's demo figures are the ones the demo code makes."""

from __future__ import annotations

from pathlib import Path

from orderchat.demo.catalogue import demo_catalogue
from orderchat.demo.orders import HANDBAGS

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_states_the_demo_catalogue_size() -> None:
    text = " ".join(README.read_text("utf-8").split())
    outdoor = len(demo_catalogue())
    assert f"outdoor-gear store ({outdoor:,} SKUs" in text
    assert f"({len(HANDBAGS)} made-to-order bags" in text
    assert f"{outdoor + len(HANDBAGS):,} SKUs in one catalogue" in text
