"""Which body each operation answers with, by method, path template and status.

Every success status an operation answers is here: a model for a JSON body,
a content type for files and CSV, or `NO_BODY`. `api/openapi.py` writes the
table into `/openapi.json`; tests/integration/test_openapi.py fails on an
operation the table leaves out, and on an entry that names no operation.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel

from orderchat.api.response_schemas import (
    chat,
    commerce,
    consults,
    notify,
    orders,
    people,
    proof,
    rules,
)


class NoBody:
    """The status carries no body (204, 304, and every answer to HEAD)."""


NO_BODY: Final = NoBody()

# Files go out as the type they were uploaded with, so any type may come back.
BINARY: Final[dict[str, dict[str, Any]]] = {
    "*/*": {"schema": {"type": "string", "format": "binary"}}
}
CSV: Final[dict[str, dict[str, Any]]] = {"text/csv": {"schema": {"type": "string"}}}
ZIP: Final[dict[str, dict[str, Any]]] = {
    "application/zip": {"schema": {"type": "string", "format": "binary"}}
}

JPEG: Final[dict[str, dict[str, Any]]] = {
    "image/jpeg": {"schema": {"type": "string", "format": "binary"}}
}
QR: Final[dict[str, dict[str, Any]]] = {
    "image/svg+xml": {"schema": {"type": "string"}},
    "image/png": {"schema": {"type": "string", "format": "binary"}},
}

Answer = type[BaseModel] | NoBody | dict[str, dict[str, Any]]

_MEDIA: dict[int, Answer] = {200: BINARY, 206: BINARY, 304: NO_BODY}

SUCCESSES: Final[dict[tuple[str, str], dict[int, Answer]]] = {
    ("get", "/healthz"): {200: people.Health},
    ("get", "/api/admin/stats"): {200: people.Stats},
    # sessions and users
    ("post", "/api/auth/login"): {200: people.Session},
    ("post", "/api/auth/invitation"): {200: people.CustomerSession},
    ("post", "/api/auth/cookie"): {204: NO_BODY},
    ("post", "/api/auth/logout"): {204: NO_BODY},
    ("post", "/api/auth/logout-all"): {200: people.Revoked},
    ("get", "/api/me"): {200: people.User},
    ("get", "/api/users"): {200: people.UserList},
    ("get", "/api/presence"): {200: people.Presence},
    ("post", "/api/users"): {201: people.User},
    # notifications (api/routes/notify.py)
    ("get", "/api/push/key"): {200: notify.PushKey},
    ("get", "/api/calls/ice-servers"): {200: notify.IceServers},
    ("get", "/api/calls/{call_id}"): {200: notify.Call},
    ("get", "/api/search"): {200: chat.SearchPage},
    ("get", "/api/admin/audit"): {200: people.AuditPage},
    ("get", "/api/admin/audit.csv"): {200: CSV},
    ("post", "/api/push/subscriptions"): {201: notify.PushSubscribed},
    ("delete", "/api/push/subscriptions"): {204: NO_BODY},
    ("get", "/api/me/devices"): {200: notify.Devices},
    ("get", "/api/me/notifications"): {200: notify.Preferences},
    ("put", "/api/me/notifications"): {200: notify.Preferences},
    ("get", "/api/conversations/{conv_id}/messages/{seq}/reminders"): {200: notify.Reminders},
    ("get", "/api/admin/webhooks"): {200: notify.WebhookList},
    ("post", "/api/admin/webhooks"): {201: notify.Webhook},
    ("put", "/api/admin/webhooks/{endpoint_id}"): {200: notify.Webhook},
    ("delete", "/api/admin/webhooks/{endpoint_id}"): {204: NO_BODY},
    ("get", "/api/admin/webhooks/{endpoint_id}/deliveries"): {200: notify.WebhookDeliveries},
    # the admin console (api/routes/staff_admin.py)
    ("get", "/api/admin/staff"): {200: people.StaffList},
    ("post", "/api/admin/staff"): {201: people.User},
    ("post", "/api/admin/invitations"): {201: people.IssuedStaffLink},
    ("put", "/api/admin/staff/{username}/roles"): {200: people.User},
    ("post", "/api/admin/staff/{username}/disable"): {200: people.StaffState},
    ("post", "/api/admin/staff/{username}/enable"): {200: people.StaffState},
    ("post", "/api/admin/staff/{username}/password-reset"): {201: people.IssuedStaffLink},
    ("post", "/api/admin/staff/{username}/sign-out"): {200: people.StaffState},
    ("post", "/api/staff-links/check"): {200: people.StaffLink},
    ("post", "/api/staff-links/accept"): {200: people.Session},
    # conversations and messages
    # A direct conversation that exists already is answered 200, a new one 201.
    ("post", "/api/conversations"): {200: chat.Conversation, 201: chat.Conversation},
    ("get", "/api/conversations"): {200: chat.ConversationList},
    ("get", "/api/conversations/{conv_id}"): {200: chat.ConversationDetail},
    ("get", "/api/conversations/{conv_id}/messages"): {200: chat.MessagePage},
    ("get", "/api/conversations/{conv_id}/messages/{seq}/audit"): {200: chat.MessageAudit},
    ("post", "/api/conversations/{conv_id}/members"): {200: chat.Conversation},
    ("delete", "/api/conversations/{conv_id}/members/{user_id}"): {200: chat.Conversation},
    ("post", "/api/conversations/{conv_id}/leave"): {204: NO_BODY},
    ("patch", "/api/conversations/{conv_id}"): {200: chat.Conversation},
    ("post", "/api/conversations/{conv_id}/settings"): {200: chat.ConversationSettings},
    ("get", "/api/conversations/{conv_id}/urgent"): {200: chat.UrgentList},
    ("post", "/api/conversations/{conv_id}/messages/{seq}/handled"): {200: chat.UrgentHandled},
    # orders
    ("get", "/api/workflows"): {200: orders.WorkflowList},
    ("post", "/api/orders"): {201: orders.Order},
    ("get", "/api/orders"): {200: orders.OrderList},
    ("get", "/api/orders/{order_id}"): {200: orders.OrderDetail},
    ("patch", "/api/orders/{order_id}"): {200: orders.Order},
    ("post", "/api/orders/{order_id}/status"): {200: orders.Order},
    ("post", "/api/orders/{order_id}/issues"): {201: orders.Issue},
    ("post", "/api/orders/{order_id}/issues/{issue_id}/settle"): {200: orders.Issue},
    ("post", "/api/orders/{order_id}/address"): {200: orders.Order},
    ("post", "/api/orders/{order_id}/invitations"): {201: orders.Invitation},
    ("get", "/api/customers/{customer_id}"): {200: orders.Customer},
    ("post", "/api/webhooks/orders"): {201: orders.WebhookAnswer, 200: orders.WebhookAnswer},
    # confirmations
    ("post", "/api/orders/{order_id}/confirmations"): {201: orders.ConfirmationItem},
    ("get", "/api/orders/{order_id}/confirmations"): {200: orders.ConfirmationList},
    ("post", "/api/confirmations/{item_id}/versions"): {201: orders.ItemAndVersion},
    ("post", "/api/confirmations/{item_id}/versions/{number}/decision"): {
        200: orders.ItemAndVersion
    },
    # inventory
    ("post", "/api/skus"): {201: commerce.Sku},
    ("get", "/api/skus"): {200: commerce.SkuList},
    ("get", "/api/skus/export"): {200: CSV},
    ("post", "/api/skus/import"): {200: commerce.SkuImport},
    ("post", "/api/skus/import/preview"): {200: commerce.ImportPreview},
    ("get", "/api/skus/{sku}"): {200: commerce.Sku},
    ("patch", "/api/skus/{sku}"): {200: commerce.Sku},
    ("post", "/api/stock/movements"): {201: commerce.MovementRecorded},
    ("get", "/api/stock/movements"): {200: commerce.MovementList},
    ("get", "/api/stock"): {200: commerce.LevelList},
    ("get", "/api/rules"): {200: rules.Rules},
    # finance
    ("post", "/api/orders/{order_id}/payments"): {201: commerce.PaymentRecorded},
    ("get", "/api/orders/{order_id}/payments"): {200: commerce.OrderMoney},
    ("post", "/api/orders/{order_id}/refunds"): {201: commerce.PaymentRecorded},
    ("post", "/api/orders/{order_id}/ship-approval"): {200: orders.Order},
    ("post", "/api/orders/{order_id}/invoice"): {201: commerce.InvoiceAnswer},
    ("post", "/api/orders/{order_id}/invoice/issue"): {200: commerce.InvoiceAnswer},
    ("get", "/api/finance/digest"): {200: commerce.Digest},
    # uploads (tus 1.0): the progress is in the headers
    ("options", "/api/uploads"): {204: NO_BODY},
    ("post", "/api/uploads"): {201: chat.UploadCreated},
    ("head", "/api/uploads/{upload_id}"): {200: NO_BODY},
    ("patch", "/api/uploads/{upload_id}"): {204: NO_BODY},
    ("delete", "/api/uploads/{upload_id}"): {204: NO_BODY},
    ("get", "/api/uploads/{upload_id}"): {200: chat.UploadState},
    # media
    ("get", "/api/media/{media_id}"): _MEDIA,
    ("get", "/api/media/{media_id}/info"): {200: chat.MediaDescriptor},
    ("get", "/api/media/{media_id}/{made}"): _MEDIA,
    ("get", "/api/conversations/{conv_id}/files"): {200: chat.FilePage},
    ("get", "/api/orders/{order_id}/files"): {200: chat.FilePage},
    # proofs (api/routes/proof.py)
    ("get", "/api/admin/verify"): {200: proof.ChainProof},
    ("get", "/api/admin/retention"): {200: proof.Retention},
    ("put", "/api/admin/retention"): {200: proof.Retention},
    ("post", "/api/admin/retention/run"): {200: proof.PurgeReport},
    ("post", "/api/orders/{order_id}/legal-hold"): {200: orders.Order},
    ("get", "/api/admin/anchors"): {200: proof.Anchors},
    ("post", "/api/admin/anchors"): {201: proof.Anchor},
    ("get", "/api/orders/{order_id}/dossier"): {200: ZIP},
    # consults and product cards (api/routes/consults.py, products.py)
    ("post", "/api/consults/start"): {201: consults.ConsultStarted},
    ("post", "/api/consults"): {200: consults.Consult, 201: consults.Consult},
    ("get", "/api/me/consults"): {200: consults.MyConsults},
    ("get", "/api/consults"): {200: consults.ConsultInbox},
    ("get", "/api/consults/{consult_id}"): {200: consults.Consult},
    ("post", "/api/consults/{consult_id}/take"): {200: consults.Consult},
    ("post", "/api/consults/{consult_id}/transfer"): {200: consults.Consult},
    ("post", "/api/consults/{consult_id}/close"): {200: consults.Consult},
    ("post", "/api/consults/{consult_id}/order"): {201: orders.Order},
    ("get", "/api/customers/{customer_id}/history"): {200: consults.CustomerHistory},
    ("post", "/api/visitors/{visitor_id}/block"): {204: NO_BODY},
    ("delete", "/api/visitors/{visitor_id}/block"): {204: NO_BODY},
    ("get", "/api/visitors/{visitor_id}/export"): {200: consults.VisitorExport},
    ("post", "/api/visitors/{visitor_id}/erase"): {200: consults.VisitorErased},
    ("post", "/api/consults/email-link"): {200: consults.LinkSent},
    ("post", "/api/auth/visitor-link"): {200: people.Session},
    ("post", "/api/conversations/{conv_id}/products"): {201: consults.SharedProduct},
    ("get", "/api/products/{sku}"): {200: consults.ProductCard},
    ("get", "/api/products/{sku}/picture"): {200: JPEG, 304: NO_BODY},
    ("put", "/api/products/{sku}/picture"): {200: consults.ProductCard},
    ("put", "/api/products/{sku}/options"): {200: consults.ProductCard},
    ("get", "/api/admin/qr"): {200: QR},
}


def models() -> list[type[BaseModel]]:
    """Every model the table names, once each, in the table's order."""
    found = (a for answers in SUCCESSES.values() for a in answers.values())
    return list(dict.fromkeys(a for a in found if isinstance(a, type)))
