"""The permission matrix for order work that is not a workflow transition.

Transitions carry their own roles in the workflow data; everything else is
here, one row per action. An admin may do everything; a customer may do only
what `CUSTOMER_ACTIONS` lists, and only on their own orders (checked by the
service that knows whose order it is).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from orderchat.core.errors import Forbidden
from orderchat.core.model import Role, User, UserKind
from orderchat.core.texts import say

R = Role


class Action(StrEnum):
    CREATE_ORDER = "create_order"
    UPDATE_ORDER = "update_order"
    INVITE_CUSTOMER = "invite_customer"
    CHANGE_ADDRESS = "change_address"
    SETTLE_INTERCEPTION = "settle_interception"
    MANAGE_CATALOGUE = "manage_catalogue"
    MOVE_STOCK = "move_stock"
    VIEW_STOCK = "view_stock"
    RECORD_PAYMENT = "record_payment"
    RECORD_REFUND = "record_refund"
    APPROVE_SHIPPING = "approve_shipping"
    REQUEST_INVOICE = "request_invoice"
    ISSUE_INVOICE = "issue_invoice"
    READ_DIGEST = "read_digest"
    MANAGE_CONFIRMATIONS = "manage_confirmations"
    PROPOSE_VERSION = "propose_version"
    DECIDE_VERSION = "decide_version"
    CHOOSE_DEFECT_REMEDY = "choose_defect_remedy"


STAFF = frozenset(Role) - {R.ADMIN}

MATRIX: Mapping[Action, frozenset[Role]] = {
    Action.CREATE_ORDER: frozenset({R.CUSTOMER_SERVICE, R.SALES}),
    Action.UPDATE_ORDER: frozenset({R.CUSTOMER_SERVICE, R.SALES, R.LOGISTICS}),
    Action.INVITE_CUSTOMER: frozenset({R.CUSTOMER_SERVICE, R.SALES}),
    Action.CHANGE_ADDRESS: frozenset({R.LOGISTICS}),
    Action.SETTLE_INTERCEPTION: frozenset({R.LOGISTICS}),
    Action.MANAGE_CATALOGUE: frozenset({R.PURCHASING, R.WAREHOUSE}),
    Action.MOVE_STOCK: frozenset({R.WAREHOUSE, R.PURCHASING}),
    Action.VIEW_STOCK: STAFF,
    Action.RECORD_PAYMENT: frozenset({R.FINANCE}),
    Action.RECORD_REFUND: frozenset({R.FINANCE}),
    Action.APPROVE_SHIPPING: frozenset({R.FINANCE}),
    Action.REQUEST_INVOICE: frozenset({R.CUSTOMER_SERVICE, R.SALES, R.FINANCE}),
    Action.ISSUE_INVOICE: frozenset({R.FINANCE}),
    Action.READ_DIGEST: frozenset({R.FINANCE}),
    Action.MANAGE_CONFIRMATIONS: frozenset({R.SALES, R.PRODUCTION}),
    Action.PROPOSE_VERSION: frozenset({R.SALES, R.PRODUCTION, R.QC}),
    Action.DECIDE_VERSION: frozenset(),  # the customer's decision (or an admin's)
    Action.CHOOSE_DEFECT_REMEDY: frozenset({R.CUSTOMER_SERVICE}),
}

CUSTOMER_ACTIONS = frozenset(
    {Action.DECIDE_VERSION, Action.CHOOSE_DEFECT_REMEDY, Action.REQUEST_INVOICE}
)


def can(user: User, action: Action) -> bool:
    if user.kind is UserKind.CUSTOMER:
        return action in CUSTOMER_ACTIONS
    return R.ADMIN in user.roles or bool(MATRIX[action].intersection(user.roles))


def check(user: User, action: Action) -> None:
    if not can(user, action):
        raise Forbidden(
            say("permissions.your_roles_do_not_allow", action=action.value.replace("_", " "))
        )


def require_staff(user: User) -> None:
    if user.kind is not UserKind.STAFF:
        raise Forbidden(say("permissions.only_staff_may_do"))


def allowed_actions(user: User) -> list[str]:
    """The actions, other than moving the order, that a client should offer this user.

    The server checks each one again when it is taken; this list only keeps the
    app from showing buttons that would be refused.
    """
    return [action.value for action in Action if can(user, action)]
