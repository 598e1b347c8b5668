"""How text becomes search terms: one tokenizer for every store.

Chinese has no spaces, and a shop's words are mostly two characters (帐篷,
皮料, 色号), which a trigram index cannot find. Every run of CJK characters is
therefore cut into overlapping character pairs; a query's run becomes the
phrase of its pairs, so "防水面料" finds exactly that string and "面料" finds
it too. Latin words are stemmed (waterproofing finds waterproof). Codes such
as SKUs and order numbers ("TNT-2P", "PO-2026-031") are kept whole as one
term besides their parts, so the code finds itself exactly and its parts
still find it.

The terms are made here, in Python, and handed to the store ready-made: to
SQLite's FTS5 as space-separated words and to PostgreSQL as a tsvector with
positions. Neither store's own text parser is ever involved, so both find the
same messages for the same query.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import snowballstemmer  # type: ignore[import-untyped]

from orderchat.core.errors import BadRequest
from orderchat.core.model import Message, MessageKind
from orderchat.core.texts import LANGUAGES, from_json, say

MAX_QUERY_CHARS = 200
MAX_QUERY_TERMS = 12
# A term longer than this is cut to it, in the index and in a query alike: nobody
# types more of a code, and PostgreSQL refuses a lexeme over 2,047 bytes.
MAX_TERM_CHARS = 64

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK_RUN = f"[{_CJK}]+"
# A letter or digit that is not CJK: one negated class, with no lookahead per character,
# since every character of every message sent passes through it.
_WORD = f"[^\\W_{_CJK}]+"
# A code: words joined by - _ . / without spaces (TNT-2P, PO-2026-031, 12.5).
_CODE = f"{_WORD}(?:[-_./]{_WORD})*"
_PIECE = re.compile(f"({_CJK_RUN})|({_CODE})")
# `_CODE` for text already ASCII and lower case, where a letter or digit is [0-9a-z]:
# the same pieces, found four times faster (a class of ranges, no Unicode lookups).
_ASCII_CODE = re.compile(r"[0-9a-z]+(?:[-_./][0-9a-z]+)*")
_JOINERS = re.compile(r"[-_./]")
_STEMMER = snowballstemmer.stemmer("english")


def normalize(text: str) -> str:
    """Fold width, case and accents, so that ＴＮＴ, tnt and TNT are one term.

    Length is kept per character (`fold_char`), so offsets in the folded text
    are offsets in the original too: highlights depend on it.
    """
    if text.isascii():  # most of what a shop types in codes and English: nothing to fold
        return text.lower()
    return "".join(fold_char(c) for c in text)


@functools.lru_cache(maxsize=4096)
def fold_char(char: str) -> str:
    folded = unicodedata.normalize("NFKC", char).casefold()
    # Accents go (café is cafe); a character that folds to several keeps its first.
    plain = "".join(c for c in unicodedata.normalize("NFD", folded) if not unicodedata.combining(c))
    plain = unicodedata.normalize("NFC", plain)
    return plain[:1] if plain else " "


def _stem(word: str) -> str:
    """A word's stem; numbers, codes' digits and non-Latin words are their own.

    Only words that can have a stem reach the cache: the numbers of a shop's
    messages (times, quantities, order numbers) are mostly new each time, and
    would push the words that repeat out of it.
    """
    if word.isalpha() and word.isascii():
        return _stem_word(word)
    return word


@functools.lru_cache(maxsize=65536)
def _stem_word(word: str) -> str:
    stemmed: str = _STEMMER.stemWord(word)
    return stemmed


def _pairs(run: str) -> list[str]:
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def _run_terms(run: str) -> list[str]:
    """A run's pairs, then its last character alone: every character then begins a
    term, so a one-character query (a prefix) finds it wherever it stands."""
    if len(run) == 1:
        return [run]
    return [*_pairs(run), run[-1]]


def _code_terms(code: str) -> list[str]:
    if code.isalnum():  # one word, no joiners: most of them
        return [_stem(code[:MAX_TERM_CHARS])]
    parts = [p[:MAX_TERM_CHARS] for p in _JOINERS.split(code) if p]
    terms = [_stem(p) for p in parts]
    if len(parts) > 1:
        terms.append("".join(parts)[:MAX_TERM_CHARS])
    return terms


def index_terms(parts: Iterable[str]) -> list[str]:
    """Every term of a message's searchable text, in order (phrases need the order)."""
    terms: list[str] = []
    for part in parts:
        if part.isascii():
            for code in _ASCII_CODE.findall(part.lower()):
                terms.extend(_code_terms(code))
            continue
        for match in _PIECE.finditer(normalize(part)):
            run, code = match.groups()
            terms.extend(_run_terms(run) if run else _code_terms(code))
    return terms


# The words of an order event's details that people write (a confirmation's title and
# text, a decision's comment, an exception's note), beside the event's own sentence.
_WRITTEN_DETAILS = ("title", "text", "comment", "note", "reason", "caption")


def search_parts(message: Message, text: str | None = None) -> list[str]:
    """What a message can be found by: its text (`text` once edited), every language's
    rendering of a server-worded message, its files' names and captions."""
    main = message.text if text is None else text
    if not message.meta and not message.attachments:  # a plain message, most of them
        return [main] if main else []
    parts = [main]
    meta = message.meta or {}
    worded = meta.get("text")
    if message.kind is MessageKind.ORDER_EVENT and isinstance(worded, dict):
        parts.extend(v for v in worded.values() if isinstance(v, str))
    said = from_json(meta.get("say"))
    if said is not None:
        parts.extend(said.render(language) for language in LANGUAGES)
    details = meta.get("details")
    if isinstance(details, dict):
        parts.extend(v for k in _WRITTEN_DETAILS if isinstance(v := details.get(k), str))
    for item in message.attachments:
        if isinstance(item, dict):
            parts.extend(v for k in ("name", "caption") if isinstance(v := item.get(k), str))
    return [p for p in dict.fromkeys(parts) if p]


def has_file(message: Message) -> bool:
    return bool(message.attachments)


@dataclass(frozen=True, slots=True)
class Term:
    """One thing a result must contain: a word, a code, or a phrase of CJK pairs."""

    words: tuple[str, ...]
    prefix: bool = False  # a lone CJK character: any pair that starts with it


@dataclass(frozen=True, slots=True)
class SearchQuery:
    raw: str
    terms: tuple[Term, ...]


def parse_query(raw: str) -> SearchQuery:
    """Every term must match (AND); a query that names nothing searchable is refused."""
    if len(raw) > MAX_QUERY_CHARS:
        raise BadRequest(say("search.query_too_long", limit=MAX_QUERY_CHARS))
    terms: list[Term] = []
    for match in _PIECE.finditer(normalize(raw)):
        run, code = match.groups()
        if run:
            terms.append(Term((run,), prefix=True) if len(run) == 1 else Term(tuple(_pairs(run))))
            continue
        parts = [p[:MAX_TERM_CHARS] for p in _JOINERS.split(code) if p]
        whole = "".join(parts)[:MAX_TERM_CHARS]
        terms.append(Term((whole,) if len(parts) > 1 else (_stem(parts[0]),)))
    unique = tuple(dict.fromkeys(terms))
    if not unique:
        raise BadRequest(say("search.query_empty"))
    if len(unique) > MAX_QUERY_TERMS:
        raise BadRequest(say("search.query_too_many_terms", limit=MAX_QUERY_TERMS))
    return SearchQuery(raw, unique)


def fts5_match(query: SearchQuery) -> str:
    """The query in FTS5's syntax: quoted terms, phrases, `*` for a prefix."""
    out = []
    for term in query.terms:
        quoted = '"' + " ".join(term.words) + '"'
        out.append(quoted + "*" if term.prefix else quoted)
    return " AND ".join(out)


def tsquery(query: SearchQuery) -> str:
    """The query as a PostgreSQL tsquery literal: `<->` keeps a phrase's pairs adjacent."""
    out = []
    for term in query.terms:
        words = [f"'{w}'" for w in term.words]
        if term.prefix:
            words = [w + ":*" for w in words]
        out.append("(" + " <-> ".join(words) + ")")
    return " & ".join(out)


def tsvector(terms: Sequence[str]) -> str:
    """Terms as a tsvector literal with their positions (PostgreSQL keeps at most 16383)."""
    return " ".join(f"'{t}':{min(i, 16383)}" for i, t in enumerate(terms, start=1))


@dataclass(frozen=True, slots=True)
class Snippet:
    text: str
    marks: tuple[tuple[int, int], ...]  # [start, end) offsets into `text`


SNIPPET_CHARS = 120


_WORD_IN_CODE = re.compile(_WORD)


def _marks(folded: str, query: SearchQuery) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    for term in query.terms:
        if term.prefix or not term.words[0].isascii():
            # A CJK phrase of overlapping pairs: the text is each pair's first character + the last.
            needle = "".join(w[0] for w in term.words) + term.words[-1][1:]
            found.extend((m.start(), m.end()) for m in re.finditer(re.escape(needle), folded))
            continue
        wanted = term.words[0]
        for match in _PIECE.finditer(folded):
            code = match.group(2)
            if code is None:
                continue
            if "".join(_JOINERS.split(code)) == wanted:
                found.append(match.span())
                continue
            found.extend(
                (match.start() + part.start(), match.start() + part.end())
                for part in _WORD_IN_CODE.finditer(code)
                if _stem(part.group()) == wanted
            )
    return _merged(found)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def snippet(parts: Sequence[str], query: SearchQuery, width: int = SNIPPET_CHARS) -> Snippet:
    """The part of a message that matched, cut around its first match, with marks."""
    chosen, marks = (parts[0] if parts else ""), []
    for part in parts:
        found = _marks(normalize(part), query)
        if found:
            chosen, marks = part, found
            break
    start = 0
    if marks and len(chosen) > width:
        start = max(0, min(marks[0][0] - width // 4, len(chosen) - width))
    end = min(len(chosen), start + width)
    cut = chosen[start:end]
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(chosen) else ""
    shift = len(prefix) - start
    kept = tuple(
        (max(s, start) + shift, min(e, end) + shift) for s, e in marks if s < end and e > start
    )
    return Snippet(prefix + cut + suffix, kept)


class SortBy(StrEnum):
    TIME = "time"
    RELEVANCE = "relevance"


# What a person may filter on; `kind` names the message kinds a person would.
SEARCHABLE_KINDS = frozenset(MessageKind) - {MessageKind.SYSTEM}
MAX_PAGE = 50


@dataclass(frozen=True, slots=True)
class SearchFilters:
    conv: str | None = None
    order: str | None = None  # an order id: its thread and its events posted elsewhere
    order_conv: str | None = None
    sender: str | None = None
    kinds: frozenset[MessageKind] = frozenset()
    since_ms: int | None = None
    until_ms: int | None = None
    has_file: bool | None = None


@dataclass(frozen=True, slots=True)
class Viewer:
    """Whose results: members see their conversations; an audit sees everything, recalls too."""

    user_id: str
    staff: bool
    audit: bool = False


@dataclass(frozen=True, slots=True)
class PageAt:
    """Where a page starts: below a position (newest first) or at a rank (best first)."""

    sort: SortBy
    before: int | None = None
    offset: int = 0

    def cursor_after(self, last_doc: int, count: int) -> str:
        if self.sort is SortBy.TIME:
            return f"t{last_doc}"
        return f"r{self.offset + count}"


def page_at(sort: SortBy, cursor: str | None) -> PageAt:
    if cursor is None or cursor == "":
        return PageAt(sort)
    tag, number = cursor[:1], cursor[1:]
    expected = "t" if sort is SortBy.TIME else "r"
    if tag != expected or not number.isdigit() or len(number) > 18:
        raise BadRequest(say("search.bad_cursor"))
    if sort is SortBy.TIME:
        return PageAt(sort, before=int(number))
    return PageAt(sort, offset=int(number))
