"""Draw the installed app's icons: the chat mark of the header on the accent blue.

    python scripts/app_icons.py

Writes PNGs into src/orderchat/web/assets/icons/, which are committed; run it again
only to change the drawing. Every shape is drawn at four times the size and scaled
down, which is Pillow's way to smooth edges.

- icon-192.png, icon-512.png: "any" purpose, a rounded square with clear corners
- icon-maskable-512.png: full bleed, the mark inside the central safe circle (the
  launcher cuts the shape it likes out of it)
- apple-touch-icon.png (180): opaque and square, since iOS rounds the corners itself
  and shows transparency as black
- badge-96.png: the mark alone in white on transparent; Android draws only its alpha
  in the status bar
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "src" / "orderchat" / "web" / "assets" / "icons"
# --accent in assets/css/app.css.
ACCENT = (29, 111, 220, 255)
WHITE = (255, 255, 255, 255)
CLEAR = (0, 0, 0, 0)
SUPERSAMPLE = 4


def mark(draw: ImageDraw.ImageDraw, left: float, top: float, size: float, dots: bool) -> None:
    """The chat bubble of the `chat` icon (ui/icons.js) filled, on a 24-unit grid placed
    at (left, top) and `size` wide; three dots of the background inside when `dots`."""

    def at(x: float, y: float) -> tuple[float, float]:
        return (left + x * size / 24, top + y * size / 24)

    draw.rounded_rectangle((*at(2, 3.5), *at(22, 17)), radius=size * 3 / 24, fill=WHITE)
    draw.polygon([at(5, 15), at(11, 15), at(4, 21.5)], fill=WHITE)
    if dots:
        for x in (7.5, 12, 16.5):
            draw.ellipse((*at(x - 1.5, 8.75), *at(x + 1.5, 11.75)), fill=ACCENT)


def icon(size: int, *, background: str, mark_share: float, dots: bool = True) -> Image.Image:
    """One icon `size` pixels square; `background` is "rounded", "full" or "none", and
    the mark spans `mark_share` of the width, centred."""
    big = size * SUPERSAMPLE
    image = Image.new("RGBA", (big, big), CLEAR)
    draw = ImageDraw.Draw(image)
    if background == "rounded":
        draw.rounded_rectangle((0, 0, big - 1, big - 1), radius=big * 0.22, fill=ACCENT)
    elif background == "full":
        draw.rectangle((0, 0, big - 1, big - 1), fill=ACCENT)
    width = big * mark_share
    # The bubble sits a little above the middle so its tail balances it.
    mark(draw, (big - width) / 2, (big - width) / 2 - big * 0.01, width, dots)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    icons = {
        "icon-192.png": icon(192, background="rounded", mark_share=0.62),
        "icon-512.png": icon(512, background="rounded", mark_share=0.62),
        # The safe zone is a circle of 40% radius: a mark half as wide stays inside it.
        "icon-maskable-512.png": icon(512, background="full", mark_share=0.5),
        "apple-touch-icon.png": icon(180, background="full", mark_share=0.6),
        "badge-96.png": icon(96, background="none", mark_share=0.9, dots=False),
    }
    for name, image in icons.items():
        image.save(OUT / name, optimize=True)
        print(OUT / name)


if __name__ == "__main__":
    main()
