"""Proving a conversation's history: where its hash chain breaks, and why.

The chain (core/chain.py) makes every link's hash depend on the link before
it, so a history holds exactly when each link, hashed after its predecessor,
gives the hash stored with it, and the last one gives the conversation's
head. These rules name the *first* link at which that fails, because every
link after a break fails too and says nothing more.

Two ways in, one rule:
- `check_links` walks links in an order someone states (a dossier's
  manifest lists them; core/dossier.py `check_dossier` checks the whole
  ZIP). A withheld link (a staff-only note in a customer's dossier) carries
  its hash but no content: it cannot be recomputed, so the walk takes its
  hash as given and the next link proves it was there.
- `ChainWalk` is fed a database's messages in seq order, each with its
  edits. Edits are links of their own, but the stored row does not say
  after which message they were chained, so the walk places each one where
  its hash says it belongs: the next link is whichever candidate (the next
  message, or the oldest unplaced edit of a message already placed) hashes
  to its stored value after the current head. A collision of SHA-256 aside,
  at most one does.

Why a link broke:
- `changed`: its content (or its stored hash) no longer gives its hash;
- `missing`: a link the chain needs is not there (a seq skipped, an edit
  version skipped, the tail gone short of the head);
- `reordered`: the link is intact, but hashes after some *other* link than
  the one before it;
- `head`: every link holds but the chain ends elsewhere than the head kept.

No I/O here: storage streams the rows in, services and commands report.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from orderchat.core.chain import GENESIS, chain_hash, edit_hash
from orderchat.core.edits import MessageEdit
from orderchat.core.model import Message
from orderchat.core.texts import Text, say

# How many recent hashes a walk keeps to tell a reordered link from a changed
# one: a swap moves a link a few places, and a bound keeps a walk over a
# million messages in constant memory.
RECENT_HASHES = 256


class LinkKind(StrEnum):
    MESSAGE = "message"
    EDIT = "edit"


class BreakReason(StrEnum):
    CHANGED = "changed"
    MISSING = "missing"
    REORDERED = "reordered"
    HEAD = "head"


@dataclass(frozen=True, slots=True, order=True)
class LinkRef:
    """Which link: a message by its seq, or the `version`-th edit of message `seq`."""

    seq: int
    version: int = 0  # 0: the message itself

    @property
    def kind(self) -> LinkKind:
        return LinkKind.MESSAGE if self.version == 0 else LinkKind.EDIT

    def text(self) -> Text:
        if self.version == 0:
            return say("proof.link_message", seq=self.seq)
        return say("proof.link_edit", seq=self.seq, version=self.version)


@dataclass(frozen=True, slots=True)
class Link:
    """One link as stored: its hash, and its content unless it was withheld.

    A purged link (retention removed its content) has no body but may keep `prev`,
    the hash of the link before it, recorded when it was purged: its place is then
    still proved, only not its content.
    """

    ref: LinkRef
    hash: str
    body: Message | MessageEdit | None = None
    prev: str | None = None

    @property
    def withheld(self) -> bool:
        return self.body is None

    @property
    def checkable(self) -> bool:
        """Whether anything proves where this link goes: its content, or its `prev`."""
        return self.body is not None or self.prev is not None

    def hashed_after(self, previous: str) -> str | None:
        """The hash this link gives after `previous` (None when that cannot be known)."""
        if isinstance(self.body, Message):
            return chain_hash(previous, self.body)
        if isinstance(self.body, MessageEdit):
            return edit_hash(previous, self.body)
        if self.prev is not None:
            return self.hash if previous == self.prev else ""
        return None

    def holds_after(self, previous: str) -> bool:
        return not self.checkable or self.hashed_after(previous) == self.hash


def message_link(message: Message, hash_: str) -> Link:
    return Link(LinkRef(message.seq), hash_, message)


def edit_link(edit: MessageEdit, hash_: str) -> Link:
    return Link(LinkRef(edit.seq, edit.version), hash_, edit)


_BROKEN_KEYS = {
    BreakReason.CHANGED: "proof.link_changed",
    BreakReason.MISSING: "proof.link_missing",
    BreakReason.REORDERED: "proof.link_reordered",
}


@dataclass(frozen=True, slots=True)
class BrokenLink:
    ref: LinkRef
    reason: BreakReason

    def text(self, head: str = "", stored_head: str = "") -> Text:
        if self.reason is BreakReason.HEAD:
            return say("proof.head_differs", link=self.ref.text(), head=head, stored=stored_head)
        return say(_BROKEN_KEYS[self.reason], link=self.ref.text())


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The outcome of one walk: how far the links held and where they ended."""

    links: int  # the links that held, in order, before any break
    head: str  # the hash the chain reached (the last link that held)
    stored_head: str  # the head the conversation (or manifest) keeps
    broken: BrokenLink | None
    withheld: int = 0

    @property
    def holds(self) -> bool:
        return self.broken is None

    def problem(self) -> Text | None:
        if self.broken is None:
            return None
        return self.broken.text(self.head, self.stored_head)


def _reason(link: Link, recent: Iterable[str]) -> BreakReason:
    """Why `link` does not hold where it is: intact after another link, or changed."""
    return (
        BreakReason.REORDERED
        if any(link.hashed_after(h) == link.hash for h in recent)
        else BreakReason.CHANGED
    )


def _ending(
    links: int, head: str, stored_head: str, last: LinkRef | None, withheld: int
) -> ChainReport:
    broken = None
    if head != stored_head:
        broken = BrokenLink(last or LinkRef(0), BreakReason.HEAD)
    return ChainReport(links, head, stored_head, broken, withheld)


def check_links(links: Sequence[Link], stored_head: str) -> ChainReport:
    """Walk `links` in the order given, from the genesis hash to `stored_head`.

    Messages must come with seqs 1, 2, 3 … (seqs are gapless), and each
    message's edits with versions 1, 2, 3 … after the message itself.
    """
    known = [GENESIS, *(link.hash for link in links)]
    listed = {link.ref.seq for link in links if link.ref.version == 0}
    previous, held, withheld = GENESIS, 0, 0
    next_seq = 1
    versions: dict[int, int] = {}
    for link in links:
        broken = _misplaced(link, next_seq, versions, listed)
        if broken is None and not link.holds_after(previous):
            broken = BrokenLink(link.ref, _reason(link, (h for h in known if h != previous)))
        if broken is not None:
            return ChainReport(held, previous, stored_head, broken, withheld)
        if link.ref.version == 0:
            next_seq += 1
        else:
            versions[link.ref.seq] = link.ref.version
        previous, held, withheld = link.hash, held + 1, withheld + link.withheld
    last = links[-1].ref if links else None
    return _ending(held, previous, stored_head, last, withheld)


def _misplaced(
    link: Link, next_seq: int, versions: dict[int, int], listed: set[int]
) -> BrokenLink | None:
    """A link whose seq or version cannot come here, whatever its hash says. A seq that
    comes early is a gap, unless the one due is `listed` further on: then it was moved."""
    ref = link.ref
    if ref.version == 0:
        if ref.seq > next_seq:
            if next_seq in listed:
                return BrokenLink(ref, BreakReason.REORDERED)
            return BrokenLink(LinkRef(next_seq), BreakReason.MISSING)
        if ref.seq < next_seq:
            return BrokenLink(ref, BreakReason.REORDERED)
        return None
    if ref.seq >= next_seq:  # an edit of a message not yet in the chain
        return BrokenLink(ref, BreakReason.REORDERED)
    expected = versions.get(ref.seq, 0) + 1
    if ref.version > expected:
        return BrokenLink(LinkRef(ref.seq, expected), BreakReason.MISSING)
    if ref.version < expected:
        return BrokenLink(ref, BreakReason.REORDERED)
    return None


@dataclass(slots=True)
class _Unplaced:
    """A message's edits not chained yet, oldest first, and the version due next."""

    links: deque[Link]
    due: int = 1

    @property
    def gap(self) -> LinkRef | None:
        """The edit that must come first but is not there, if one is missing."""
        first = self.links[0].ref
        return None if first.version == self.due else LinkRef(first.seq, self.due)


class ChainWalk:
    """A conversation's chain checked as its rows stream in, placing edits by their hashes.

    Feed `message` every message in seq order with that message's edits, then
    call `finish`. After a break the walk only counts: nothing after it can be
    proved. With `keep`, `order` collects the links in chain order (after a
    break, each message followed by its edits: the best order left to show).
    """

    def __init__(self, *, keep: bool = False) -> None:
        self.previous = GENESIS
        self.held = 0
        self.next_seq = 1
        self.broken: BrokenLink | None = None
        self.order: list[Link] | None = [] if keep else None
        self._unplaced: deque[_Unplaced] = deque()
        self._recent: deque[str] = deque([GENESIS], maxlen=RECENT_HASHES)
        self._last: LinkRef | None = None
        # Withheld links accepted since the last checked one: their order among
        # themselves cannot be known, only that the next checked link follows one.
        self._blind: list[Link] = []

    def message(self, link: Link, edits: Sequence[Link] = ()) -> None:
        """The next message in seq order, and its edits (any order)."""
        ordered = sorted(edits, key=lambda e: e.ref)
        if self.broken is not None:
            self._keep(link, *ordered)
            return
        misplaced = _misplaced(link, self.next_seq, {}, set())
        if misplaced is not None:
            self._break(misplaced, link, *ordered)
            return
        while not self._holds_here(link):
            if not self._place_an_edit(link):
                self._break(self._why(link), link, *ordered)
                return
        self._accept(link)
        self.next_seq += 1
        if ordered:
            self._unplaced.append(_Unplaced(deque(ordered)))

    def finish(self, last_seq: int, stored_head: str) -> ChainReport:
        """The report, once every message up to the conversation's `last_seq` was fed."""
        while self.broken is None and self._unplaced:
            if not self._place_an_edit():
                self._break(self._why(self._unplaced[0].links[0]))
        self._end_blind_run_at(stored_head)
        if self.broken is None and self.next_seq <= last_seq:
            self.broken = BrokenLink(LinkRef(self.next_seq), BreakReason.MISSING)
        if self.broken is not None:
            return ChainReport(self.held, self.previous, stored_head, self.broken)
        return _ending(self.held, self.previous, stored_head, self._last, 0)

    def _holds_here(self, link: Link) -> bool:
        if link.holds_after(self.previous):
            return True
        return any(link.hashed_after(b.hash) == link.hash for b in self._blind[:-1])

    def _end_blind_run_at(self, stored_head: str) -> None:
        """A chain ending in withheld links ends at whichever of them is the head."""
        last = next((b for b in self._blind if b.hash == stored_head), None)
        if self.broken is not None or last is None or last.hash == self.previous:
            return
        self.previous, self._last = last.hash, last.ref
        if self.order is not None:
            self.order.remove(last)
            self.order.append(last)

    def _why(self, link: Link) -> BrokenLink:
        """Why nothing holds here: an edit skipped before it, or `link` itself."""
        gap = next((u.gap for u in self._unplaced if u.gap is not None), None)
        if gap is not None:
            return BrokenLink(gap, BreakReason.MISSING)
        return BrokenLink(link.ref, _reason(link, self._recent))

    def _place_an_edit(self, following: Link | None = None) -> bool:
        """Chain the unplaced edit that belongs here; False if none does.

        An edit with content belongs where it hashes to its value. A withheld one
        (its message purged) cannot be checked itself: it goes where the link that
        must follow it then holds, else first come.
        """
        due = [u for u in self._unplaced if u.links[0].ref.version == u.due]
        checked = [u for u in due if u.links[0].checkable]
        blind = [u for u in due if not u.links[0].checkable]
        found = next((u for u in checked if u.links[0].holds_after(self.previous)), None)
        if found is None and following is not None:
            found = next((u for u in blind if following.holds_after(u.links[0].hash)), None)
        found = found or next(iter(blind), None)
        if found is None:
            return False
        edit = found.links.popleft()
        found.due += 1
        if not found.links:
            self._unplaced.remove(found)
        self._accept(edit)
        return True

    def _accept(self, link: Link) -> None:
        self._blind = [*self._blind, link] if not link.checkable else []
        self.previous = link.hash
        self.held += 1
        self._last = link.ref
        self._recent.append(link.hash)
        self._keep(link)

    def _keep(self, *links: Link) -> None:
        if self.order is not None:
            self.order.extend(links)

    def _break(self, broken: BrokenLink, *links: Link) -> None:
        self.broken = broken
        for unplaced in self._unplaced:  # what was never placed is still shown
            self._keep(*unplaced.links)
        self._unplaced.clear()
        self._keep(*links)
