"""Order workflows as data: states, transitions, who may move them, who is told.

A workflow is parsed from TOML text (the built-in ones ship as files beside the
package; a shop adds its own without touching code). This module only parses
and decides; loading files happens at the edge.

Per transition:
- `from`: the states it leaves (several allowed), `to`: the state it reaches;
- `roles`: staff roles that may perform it (`admin` always may);
- `notify`: roles told (mentioned in the order conversation and posted to
  their channels); `customer`: whether the customer is told, with `text`
  in each language; `photos`: `true` when the step needs at least one photo,
  `"optional"` when it takes photos but does without (docs/orders.md §1.5);
- `guards`: named conditions checked against the order (see GUARDS);
- `effects`: named side effects the services carry out (see EFFECTS);
- `action`: optional, what the step's button says in each language, for a step
  whose target state alone would mislead (a repeated step, a step back); may
  use `{round}`, the sample round the step starts.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field

from orderchat.core.errors import BadRequest, Conflict, Forbidden
from orderchat.core.model import Role
from orderchat.core.texts import say

LANGUAGES = ("zh-CN", "en")

# Guards a transition may name; services evaluate them from the order's facts.
GUARDS = frozenset(
    {
        "paid_or_ship_approved",  # unpaid orders ship only with finance's approval
        "confirmations_approved",  # every required confirmation item approved
        "has_tracking",  # a carrier and tracking number are recorded
    }
)
EFFECTS = frozenset(
    {
        "reserve_stock",  # reserve the items at the default location
        "release_stock",  # give reservations back
        "ship_stock",  # turn reservations into sale_out movements
        "next_sample_round",  # count one more sample round
        "return_stock",  # returned items go back on the shelf (return_in)
        "record_shipped",  # the goods left: the digest counts the order as a receivable
    }
)


@dataclass(frozen=True, slots=True)
class Transition:
    sources: frozenset[str]
    target: str
    roles: frozenset[Role]
    notify: frozenset[Role]
    customer: bool
    text: Mapping[str, str]
    photos: bool
    guards: tuple[str, ...]
    effects: tuple[str, ...]
    action: Mapping[str, str] = field(default_factory=dict)
    # Evidence steps (packed, QC passed, rework) are refused without a photo.
    photos_required: bool = False

    def customer_text(self, language: str) -> str:
        return self.text.get(language) or self.text.get("zh-CN") or self.target


@dataclass(frozen=True, slots=True)
class Workflow:
    name: str
    title: Mapping[str, str]
    initial: str
    states: tuple[str, ...]
    labels: Mapping[str, Mapping[str, str]]
    terminal: frozenset[str]
    staff_roles: frozenset[Role]
    transitions: tuple[Transition, ...]

    def label(self, state: str, language: str) -> str:
        return self.labels.get(state, {}).get(language) or state

    def state_words(self, state: str) -> dict[str, str]:
        """The state's label in every language: a text param each reader sees in theirs."""
        return {language: self.label(state, language) for language in LANGUAGES}

    def transition(self, source: str, target: str) -> Transition:
        """The transition from `source` to `target`.

        Raises:
            Conflict: no such transition: the order cannot go there from here.
        """
        for transition in self.transitions:
            if source in transition.sources and transition.target == target:
                return transition
        allowed = ", ".join(self.next_states(source)) or "none"
        raise Conflict(
            say("workflows.order_cannot_become_next", source=source, target=target, allowed=allowed)
        )

    def next_states(self, source: str) -> list[str]:
        return [t.target for t in self.transitions if source in t.sources]

    def moves_for(self, source: str, roles: tuple[Role, ...]) -> list[Transition]:
        """The transitions out of `source` that holders of `roles` may make."""
        return [t for t in self.transitions if source in t.sources and may_move(t, roles)]


def may_move(transition: Transition, roles: tuple[Role, ...]) -> bool:
    return Role.ADMIN in roles or bool(transition.roles.intersection(roles))


def check_actor(transition: Transition, roles: tuple[Role, ...]) -> None:
    if may_move(transition, roles):
        return
    needed = ", ".join(sorted(r.value for r in transition.roles))
    raise Forbidden(
        say("workflows.moving_order_needs_one", target=transition.target, needed=needed)
    )


@dataclass(frozen=True, slots=True)
class GuardFacts:
    """What guards look at, gathered by the service from the order."""

    paid: bool
    ship_approved: bool
    required_confirmations_open: int
    has_tracking: bool


def check_guards(transition: Transition, facts: GuardFacts) -> None:
    for guard in transition.guards:
        if guard == "paid_or_ship_approved" and not (facts.paid or facts.ship_approved):
            raise Conflict(say("workflows.order_not_paid_finance_must"))
        if guard == "confirmations_approved" and facts.required_confirmations_open:
            raise Conflict(
                say(
                    "workflows.required_confirmations_open",
                    count=facts.required_confirmations_open,
                )
            )
        if guard == "has_tracking" and not facts.has_tracking:
            raise Conflict(say("workflows.record_carrier_tracking_number_first"))


# --- parsing ----------------------------------------------------------------------


def _texts(raw: object, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise BadRequest(say("workflows.expected_table_language_text", where=where))
    return {str(k): v for k, v in raw.items()}


def _roles(raw: object, where: str) -> frozenset[Role]:
    if not isinstance(raw, list):
        raise BadRequest(say("workflows.expected_list_roles", where=where))
    try:
        return frozenset(Role(r) for r in raw)
    except ValueError as exc:
        raise BadRequest(say("workflows.problem_at", where=where, reason=exc)) from None


def _names(raw: object, known: frozenset[str], where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(n, str) for n in raw):
        raise BadRequest(say("workflows.expected_list_names", where=where))
    unknown = [n for n in raw if n not in known]
    if unknown:
        raise BadRequest(
            say("workflows.unknown_known", where=where, unknown=unknown, known=sorted(known))
        )
    return tuple(raw)


def _photos(raw: object, where: str) -> tuple[bool, bool]:
    """(takes photos, needs one) from a transition's `photos`: true, false or "optional"."""
    if raw is True or raw is False:
        return raw, raw
    if raw == "optional":
        return True, False
    raise BadRequest(say("workflows.photos_must_true_false_optional", where=where))


def _transition(raw: object, states: set[str], index: int) -> Transition:
    where = f"transitions[{index}]"
    if not isinstance(raw, dict):
        raise BadRequest(say("workflows.expected_table", where=where))
    sources = raw.get("from")
    target = raw.get("to")
    if isinstance(sources, str):
        sources = [sources]
    if not isinstance(sources, list) or not sources or not isinstance(target, str):
        raise BadRequest(say("workflows.needs_from_state_list", where=where))
    for state in [*sources, target]:
        if state not in states:
            raise BadRequest(say("workflows.unknown_state", where=where, state=state))
    photos, photos_required = _photos(raw.get("photos", False), f"{where}.photos")
    return Transition(
        sources=frozenset(sources),
        target=target,
        roles=_roles(raw.get("roles", []), f"{where}.roles"),
        notify=_roles(raw.get("notify", []), f"{where}.notify"),
        customer=bool(raw.get("customer", False)),
        text=_texts(raw.get("text"), f"{where}.text"),
        photos=photos,
        guards=_names(raw.get("guards", []), GUARDS, f"{where}.guards"),
        effects=_names(raw.get("effects", []), EFFECTS, f"{where}.effects"),
        action=_texts(raw.get("action"), f"{where}.action"),
        photos_required=photos_required,
    )


def parse_workflow(text: str) -> Workflow:
    """Parse and check a workflow written in TOML.

    Raises:
        BadRequest: the TOML is invalid or the workflow is inconsistent.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadRequest(say("workflows.workflow_not_valid_toml", reason=exc)) from None
    name = raw.get("name")
    initial = raw.get("initial")
    states_raw = raw.get("states")
    if not isinstance(name, str) or not name.isidentifier():
        raise BadRequest(say("workflows.workflow_needs_name_made_letters"))
    if not isinstance(states_raw, dict) or not states_raw:
        raise BadRequest(say("workflows.workflow_needs_states_table"))
    states = list(states_raw)
    if initial not in states_raw:
        raise BadRequest(say("workflows.workflow_initial_must_one_states"))
    labels = {
        s: _texts(v.get("label") if isinstance(v, dict) else None, f"states.{s}")
        for s, v in states_raw.items()
    }
    terminal = frozenset(
        s for s, v in states_raw.items() if isinstance(v, dict) and v.get("terminal")
    )
    transitions_raw = raw.get("transitions", [])
    if not isinstance(transitions_raw, list) or not transitions_raw:
        raise BadRequest(say("workflows.workflow_needs_transitions"))
    transitions = tuple(_transition(t, set(states), i) for i, t in enumerate(transitions_raw))
    reachable = {initial} | {t.target for t in transitions}
    unreachable = [s for s in states if s not in reachable]
    if unreachable:
        raise BadRequest(say("workflows.states_no_transition_reaches", unreachable=unreachable))
    for transition in transitions:
        if transition.sources & terminal:
            raise BadRequest(
                say(
                    "workflows.transition_leaves_terminal_state_s",
                    states=sorted(transition.sources & terminal),
                )
            )
    return Workflow(
        name=name,
        title=_texts(raw.get("title"), "title"),
        initial=str(initial),
        states=tuple(states),
        labels=labels,
        terminal=terminal,
        staff_roles=_roles(raw.get("staff_roles", []), "staff_roles"),
        transitions=transitions,
    )
