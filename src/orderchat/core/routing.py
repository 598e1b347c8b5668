"""Which roles hear of which order event, and whether the customer does too.

Rules are data: event kind -> Route. A routed event is posted in the order's
conversation mentioning each role (`@warehouse` …), internal to staff unless
the customer is meant to see it, and in each role's own channel.
Status changes route by their workflow transition's `notify` list instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from orderchat.core.model import Role
from orderchat.core.texts import Text

R = Role


@dataclass(frozen=True, slots=True)
class Route:
    roles: frozenset[Role]
    customer: bool
    text: Mapping[str, str]  # placeholders are filled from the event's details
    # Posted as an urgent message: it climbs the notification ladder until read.
    urgent: bool = False


def _route(roles: set[Role], customer: bool, zh: str, en: str, *, urgent: bool = False) -> Route:
    return Route(frozenset(roles), customer, {"zh-CN": zh, "en": en}, urgent)


ROUTES: Mapping[str, Route] = {
    # exceptions
    "out_of_stock": _route(
        {R.PURCHASING, R.CUSTOMER_SERVICE},
        False,
        "缺货：{sku} {name} 需要 {needed}，可用 {available}。请采购补货，客服向客户推荐替代品。",
        "Out of stock: {sku} {name} needs {needed}, {available} available. Purchasing: "
        "restock; customer service: offer the customer an alternative.",
        urgent=True,  # an order stands still until someone acts
    ),
    "address_change_requested": _route(
        {R.LOGISTICS},
        False,
        "客户要求改地址：{address}（{stage}）",
        "The customer asks to change the address to {address} ({stage})",
    ),
    "address_changed": _route(
        {R.WAREHOUSE, R.LOGISTICS},
        True,
        "收货地址已更新为：{address}",
        "The delivery address is now: {address}",
    ),
    "interception_settled": _route(
        {R.CUSTOMER_SERVICE, R.LOGISTICS},
        True,
        "拦截改址结果：{outcome}。{note}",
        "Interception result: {outcome}. {note}",
    ),
    "delay_risk": _route(
        {R.CUSTOMER_SERVICE},
        False,
        "延误风险：{reason}，预计新的到货时间 {eta}。请客服告知客户。",
        "Delay risk: {reason}; new ETA {eta}. Customer service: tell the customer.",
    ),
    "delay_notice": _route(
        set(),
        True,
        "很抱歉，您的订单会有延误：{reason}。新的预计时间：{eta}。",
        "Sorry, your order is delayed: {reason}. New estimated date: {eta}.",
    ),
    "defect_found": _route(
        {R.CUSTOMER_SERVICE},
        True,
        "发现质量问题：{description}。请选择换货或退款。",
        "A defect was found: {description}. Please choose an exchange or a refund.",
    ),
    "defect_resolved": _route(
        {R.CUSTOMER_SERVICE, R.WAREHOUSE, R.FINANCE},
        True,
        "客户选择了：{choice}",
        "The customer chose: {choice}",
    ),
    "customer_note": _route(
        {R.WAREHOUSE},
        False,
        "拣货提醒，客户备注：{note}",
        "Picking reminder, the customer's note: {note}",
    ),
    # money
    "payment_received": _route(
        {R.FINANCE, R.SALES},
        False,
        "收到付款 {amount}（{method}，{reference}）",
        "Payment received: {amount} ({method}, {reference})",
    ),
    "refund_recorded": _route(
        {R.FINANCE, R.SALES, R.CUSTOMER_SERVICE},
        True,
        "已退款 {amount}（{method}）",
        "Refunded {amount} ({method})",
    ),
    "ship_approved": _route(
        {R.WAREHOUSE, R.LOGISTICS},
        False,
        "财务已批准未付款订单发货。{note}",
        "Finance approved shipping this unpaid order. {note}",
    ),
    "invoice_requested": _route(
        {R.FINANCE},
        False,
        "申请开票：{title}",
        "Invoice requested: {title}",
    ),
    "invoice_issued": _route(
        {R.FINANCE, R.SALES},
        True,
        "发票已开具，发票号 {invoice_number}",
        "The invoice has been issued, number {invoice_number}",
    ),
    # confirmations (factories)
    "confirmation_proposed": _route(
        {R.SALES},
        True,
        "请确认「{title}」第 {version} 版：{text}",
        "Please review '{title}', version {version}: {text}",
    ),
    "confirmation_decided": _route(
        {R.SALES, R.PRODUCTION},
        True,
        "「{title}」第 {version} 版：{decision}。{comment}",
        "'{title}' version {version}: {decision}. {comment}",
    ),
    # inventory
    "low_stock": _route(
        {R.PURCHASING},
        False,
        "低库存：{sku} {name} 仅剩 {available}（阈值 {threshold}）",
        "Low stock: {sku} {name} has {available} left (threshold {threshold})",
    ),
}

# Who may raise each exception on an order.
EXCEPTION_REPORTERS: Mapping[str, frozenset[Role]] = {
    "out_of_stock": frozenset({R.WAREHOUSE, R.PURCHASING, R.CUSTOMER_SERVICE, R.SALES}),
    "address_change_requested": frozenset({R.CUSTOMER_SERVICE, R.SALES, R.LOGISTICS}),
    "delay_risk": frozenset(
        {R.PRODUCTION, R.LOGISTICS, R.WAREHOUSE, R.PURCHASING, R.CUSTOMER_SERVICE}
    ),
    "delay_notice": frozenset({R.CUSTOMER_SERVICE}),
    "defect_found": frozenset({R.QC, R.WAREHOUSE, R.CUSTOMER_SERVICE}),
}


def may_report(kind: str, roles: tuple[Role, ...]) -> bool:
    """Whether holders of `roles` may raise an exception of this kind."""
    return Role.ADMIN in roles or bool(EXCEPTION_REPORTERS[kind].intersection(roles))


# Who may close each exception without a remedy of its own (an interception's
# outcome and a defect's remedy have their own actions).
ISSUE_SETTLERS: Mapping[str, frozenset[Role]] = {
    "out_of_stock": frozenset({R.PURCHASING, R.CUSTOMER_SERVICE}),
    "address_change_requested": frozenset({R.LOGISTICS}),
    "delay_risk": frozenset({R.CUSTOMER_SERVICE}),
    "delay_notice": frozenset({R.CUSTOMER_SERVICE}),
    "defect_found": frozenset({R.CUSTOMER_SERVICE}),
}

ROLE_CHANNEL_TITLES: Mapping[Role, str] = {
    R.ADMIN: "管理 #admin",
    R.CUSTOMER_SERVICE: "客服 #customer_service",
    R.SALES: "销售 #sales",
    R.PURCHASING: "采购 #purchasing",
    R.WAREHOUSE: "仓库 #warehouse",
    R.LOGISTICS: "物流 #logistics",
    R.FINANCE: "财务 #finance",
    R.PRODUCTION: "生产 #production",
    R.QC: "质检 #qc",
}

# The channel where the server publishes each day's signed chain heads (core/anchor.py):
# kept like a role's channel, for the administrators.
AUDIT_CHANNEL = "audit"
AUDIT_CHANNEL_TITLE = "审计 #audit"


def channel_role(key: str) -> Role | None:
    """The role whose holders a kept channel is for."""
    if key == AUDIT_CHANNEL:
        return R.ADMIN
    return Role(key) if key in {r.value for r in Role} else None


class _Blank(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return ""


def render(template: str, details: Mapping[str, object]) -> str:
    """Fill `{name}` placeholders; a missing detail becomes empty, never an error."""
    return template.format_map(_Blank(details)).strip()


def render_texts(texts: Mapping[str, str], details: Mapping[str, object]) -> dict[str, str]:
    """Each language's template filled; a detail that is a catalogue `Text` in that language."""
    return {
        language: render(text, in_language(details, language)) for language, text in texts.items()
    }


def in_language(details: Mapping[str, object], language: str) -> dict[str, object]:
    """`details` with every catalogue `Text` among them rendered for `language`."""
    return {k: v.render(language) if isinstance(v, Text) else v for k, v in details.items()}
