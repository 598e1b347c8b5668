"""Every sentence the server says to a person, in Chinese and English.

A `Text` is a catalogue key plus named parameters; it becomes words only at
an edge that knows who reads it: the HTTP error handler (the request's
language), the WebSocket connection (the language given at `hello`), or a
client rendering a stored system message's `meta.say` in its viewer's
language. The templates live in `core/text_table.py`, one line per key with
the zh-CN template first and the en template second, both naming the same
`{placeholders}` (str.format syntax; format specs such as `{seconds:g}` are
allowed). `tests/unit/test_language_scan.py` holds the table to that.

Rules:
- Never build a sentence for a person from an f-string: `say("key", name=value)`.
- Parameters are data (ids, numbers, codes, names), not words in one language;
  a word that needs translating is itself a `Text` passed as a parameter, and
  a name kept in both languages (a SKU's name_zh and name_en) is a mapping
  `{"zh-CN": ..., "en": ...}` of which the reader's language is shown.
- Parameters must survive JSON: they are stored in message meta and sent in
  error bodies. `say` turns anything else into its `str()`.

See docs/texts.md for how to add a text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from string import Formatter
from typing import Union

from orderchat.core.text_table import TEXTS

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"

Param = Union[str, int, float, bool, None, "Text", list[str], dict[str, str]]


@dataclass(frozen=True, slots=True)
class Text:
    """A catalogue sentence not yet rendered: who reads it decides the language."""

    key: str
    params: Mapping[str, Param] = field(default_factory=dict)

    def render(self, language: str) -> str:
        zh, en = TEXTS[self.key]
        template = en if language == "en" else zh
        values = {name: _shown(value, language) for name, value in self.params.items()}
        return template.format_map(_Blank(values))

    def to_json(self) -> dict[str, object]:
        """The form stored in meta and sent on the wire: `{"key", "params"}`."""
        return {"key": self.key, "params": {k: _json(v) for k, v in self.params.items()}}

    def __str__(self) -> str:
        return self.render("en")


def say(key: str, /, **params: object) -> Text:
    """The catalogue text `key` with its parameters; an unknown key is a bug."""
    if key not in TEXTS:
        raise KeyError(f"no text {key!r} in core/text_table.py")
    return Text(key, {name: _param(value) for name, value in params.items()})


def from_json(data: object) -> Text | None:
    """A stored `{"key", "params"}` back as a Text, or None if it is not one we know."""
    if not isinstance(data, Mapping):
        return None
    key, params = data.get("key"), data.get("params")
    if not isinstance(key, str) or key not in TEXTS or not isinstance(params, Mapping):
        return None
    return Text(key, {str(k): _param(from_json(v) or v) for k, v in params.items()})


def render_all(texts: Sequence[Text], language: str) -> str:
    """Several texts as lines of one message (a stock answer: a heading and its rows)."""
    return "\n".join(text.render(language) for text in texts)


def worded(texts: Sequence[Text]) -> dict[str, str]:
    """The lines rendered in every language: `meta.text` for clients that pick by language."""
    return {language: render_all(texts, language) for language in LANGUAGES}


def placeholders(template: str) -> set[str]:
    """The names a template fills, for the catalogue check."""
    return {name for _, name, _, _ in Formatter().parse(template) if name}


def pick_language(accept_language: str | None) -> str:
    """The best of `LANGUAGES` for an Accept-Language header (RFC 9110 §12.5.4).

    Absent or unmatched, Chinese: the product's home language.
    """
    best, best_q = DEFAULT_LANGUAGE, -1.0
    for part in (accept_language or "").split(","):
        tag, _, rest = part.strip().partition(";")
        q = 1.0
        if rest.strip().startswith("q="):
            try:
                q = float(rest.strip()[2:])
            except ValueError:
                continue
        language = normalize_language(tag)
        if language is not None and q > best_q:
            best, best_q = language, q
    return best


def normalize_language(tag: str | None) -> str | None:
    """`zh`, `zh-Hans-CN`, `zh_cn` → zh-CN; `en-GB` → en; anything else → None."""
    primary = (tag or "").strip().replace("_", "-").split("-")[0].lower()
    if primary == "zh":
        return "zh-CN"
    if primary == "en":
        return "en"
    return None


def _param(value: object) -> Param:
    if value is None or isinstance(value, bool | int | float | Text):
        return value
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [str(v) for v in value]
    return str(value)


def _shown(value: Param, language: str) -> object:
    if isinstance(value, Text):
        return value.render(language)
    if isinstance(value, list):
        return ", ".join(value)
    if isinstance(value, dict):
        return value.get(language) or next(iter(value.values()), "")
    return value


def _json(value: Param) -> object:
    return value.to_json() if isinstance(value, Text) else value


class _Blank(dict[str, object]):
    """A missing parameter renders empty rather than failing a reply mid-error."""

    def __missing__(self, key: str) -> str:
        return ""
