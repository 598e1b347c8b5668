"""The SDK's public surface is a promise: adding a name is a decision, losing one a break."""

from __future__ import annotations

import orderchat.client

EXPORTED = {
    "Ack",
    "AckTimeoutError",
    "BadRequestError",
    "Client",
    "ClientClosedError",
    "ClientError",
    "ClientOptions",
    "CommandReply",
    "ConflictError",
    "Conversation",
    "CursorExpiredError",
    "Event",
    "ForbiddenError",
    "HttpApi",
    "InternalServerError",
    "MediaUpdated",
    "MembersChanged",
    "Message",
    "MessageEdited",
    "MessageRecalled",
    "MessageReceived",
    "NotFoundError",
    "OrderChanged",
    "ProtocolError",
    "RateLimitedError",
    "ReadMarked",
    "ServerError",
    "Session",
    "SessionRevokedError",
    "TooLargeError",
    "TransportError",
    "UnauthorizedError",
    "User",
    "UserTyping",
    "login",
}


def test_client_exports_exactly_its_public_names() -> None:
    assert set(orderchat.client.__all__) == EXPORTED


def test_every_exported_name_exists() -> None:
    missing = [name for name in orderchat.client.__all__ if not hasattr(orderchat.client, name)]
    assert missing == []
