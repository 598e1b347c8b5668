"""The async Python SDK for OrderChat.

It imports only `orderchat.core`, `orderchat.protocol`, the standard library,
`websockets`, `httpx` and `orjson`, so an application installs no server
dependencies to use it. A minimal program::

    session = await login("http://127.0.0.1:8000", "ann", "secret")
    async with Client(session) as client:
        await client.send(conv_id, "hello")
        async for event in client.events():
            ...

`Client` reconnects and resumes by itself; see `orderchat.client._client` for
the rules it keeps. Errors are drawn as a tree in `orderchat.client._errors`.
"""

from orderchat.client._client import Client
from orderchat.client._errors import (
    AckTimeoutError,
    BadRequestError,
    ClientClosedError,
    ClientError,
    ConflictError,
    CursorExpiredError,
    ForbiddenError,
    InternalServerError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    SessionRevokedError,
    TooLargeError,
    TransportError,
    UnauthorizedError,
)
from orderchat.client._http import HttpApi, login
from orderchat.client._models import (
    Ack,
    CommandReply,
    Conversation,
    Event,
    MediaUpdated,
    MembersChanged,
    Message,
    MessageEdited,
    MessageRecalled,
    MessageReceived,
    OrderChanged,
    ReadMarked,
    Session,
    User,
    UserTyping,
)
from orderchat.client._options import ClientOptions

__all__ = [
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
]
