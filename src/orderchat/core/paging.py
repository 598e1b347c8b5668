"""Pages of a counted list: which slice to fetch and how to name its neighbours."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Page:
    """Page `number` (1-based) of `pages`, holding items [offset, offset + size)."""

    number: int
    pages: int
    total: int
    offset: int
    size: int

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    @property
    def has_prev(self) -> bool:
        return self.number > 1


def page_of(total: int, asked: int, size: int) -> Page:
    """The page to show when page `asked` is requested: past the end shows the last one.

    An empty list still has one (empty) page, so "page 1 of 1" is always valid.
    """
    if size < 1:
        raise ValueError("a page holds at least one item")
    pages = max(1, -(-total // size))
    number = min(max(1, asked), pages)
    return Page(number, pages, total, (number - 1) * size, size)
