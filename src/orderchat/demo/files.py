"""Pictures and documents for the demo shop, drawn on the spot.

The demo must show what media looks like in a conversation without shipping
binary files with the package: a tote bag's sample in two colours, a packed
parcel and a design drawing, made with Pillow in a few milliseconds.
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw


def sample_photo(colour: tuple[int, int, int], label: str) -> bytes:
    """A tote bag drawn in `colour` on a studio backdrop, as a JPEG."""
    image = Image.new("RGB", (1200, 900), (236, 232, 226))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 640, 1200, 900), fill=(214, 208, 200))
    draw.arc((430, 130, 770, 470), 180, 360, fill=_shade(colour, 0.7), width=28)
    draw.rounded_rectangle(
        (330, 290, 870, 760), 36, fill=colour, outline=_shade(colour, 0.6), width=6
    )
    for y in range(330, 740, 14):  # the grain of the leather
        draw.line((350, y, 850, y + 6), fill=_shade(colour, 0.92), width=2)
    draw.rectangle((560, 420, 640, 470), fill=(212, 175, 55))
    draw.text((40, 40), label, fill=(60, 60, 60))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def parcel_photo(label: str = "OD-10024  SF") -> bytes:
    """A packed parcel with its label, the warehouse's proof of packing."""
    image = Image.new("RGB", (1000, 750), (190, 196, 204))
    draw = ImageDraw.Draw(image)
    draw.polygon([(200, 300), (600, 220), (820, 320), (420, 410)], fill=(205, 160, 110))
    draw.polygon([(200, 300), (420, 410), (420, 660), (200, 540)], fill=(176, 132, 86))
    draw.polygon([(420, 410), (820, 320), (820, 560), (420, 660)], fill=(160, 118, 76))
    draw.rectangle((520, 430, 720, 520), fill=(250, 250, 250))
    draw.text((535, 450), label, fill=(20, 20, 20))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def design_drawing() -> bytes:
    """A two-page technical drawing of the tote, as a PDF."""
    pages = []
    for title, width, height in (
        ("TOTE BAG-0423  front", 360, 300),
        ("TOTE BAG-0423  side", 140, 300),
    ):
        page = Image.new("RGB", (1240, 1754), "white")
        draw = ImageDraw.Draw(page)
        draw.rectangle((60, 60, 1180, 1694), outline="black", width=3)
        draw.text((100, 100), title, fill="black")
        left, top = 620 - width, 600
        draw.rectangle((left, top, left + 2 * width, top + 2 * height), outline="black", width=4)
        base = top + 2 * height + 60
        draw.line((left, base, left + 2 * width, base), fill="black")
        draw.text((600, base + 15), f"{width // 10} cm", fill="black")
        pages.append(page)
    out = io.BytesIO()
    pages[0].save(out, "PDF", save_all=True, append_images=pages[1:], resolution=150)
    return out.getvalue()


def _shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    red, green, blue = colour
    return (int(red * factor), int(green * factor), int(blue * factor))
