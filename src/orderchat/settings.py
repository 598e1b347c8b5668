"""One frozen Settings object, read once at startup and passed down explicitly."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from orderchat.core.calls import CallRules
from orderchat.core.passwords import PasswordCost
from orderchat.core.turn import IceConfig
from orderchat.notify.mail import SmtpSettings


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = Path("orderchat-data")
    database_url: str | None = None
    redis_url: str | None = None
    # This process's name among the nodes of one database (logs, leases, the bus).
    node_name: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    demo: bool = False
    rate_limits: bool = True
    recall_window_s: float = 120.0
    session_ttl_s: float = 30 * 24 * 3600.0
    # A connection may fall this many frames behind before it is dropped and
    # told to resync; 4096 frames of ~300 bytes is ~1.2 MB at worst.
    ws_queue_frames: int = 4096
    # A client must say hello within this long, or the socket is closed.
    hello_timeout_s: float = 10.0
    # Group commit: at most this many operations in one transaction.
    max_batch: int = 1000
    # Whether messages are written to the search index as they are stored. Off only
    # measures what the index costs (bench/search.py): what is sent meanwhile is never found.
    search_index: bool = True
    # Events the resume query fetches per page.
    resume_page: int = 1000
    # How long a customer's invitation link keeps working.
    invitation_ttl_s: float = 30 * 24 * 3600.0
    # When the daily reconciliation digest is posted to #finance (local time, HH:MM).
    digest_time: str = "08:00"
    # Shared secret for inbound order webhooks; None turns the endpoint off.
    webhook_secret: str | None = None
    # The largest file one upload may be, and all of one user's uploads together.
    max_upload_bytes: int = 2 * 1024**3
    upload_quota_bytes: int = 20 * 1024**3
    # An upload that is not finished within this long is deleted.
    upload_ttl_s: float = 24 * 3600.0
    # Making the previews of one file may take this long before it is given up.
    preview_timeout_s: float = 120.0
    # What people open OrderChat at (https://chat.shop.example): links in pushes and
    # mails. Without it, the address the server listens on.
    public_url: str | None = None
    # The shop's name in mails and on lock screens.
    shop_name: str = "OrderChat"
    # The SMTP server mails go through; None: no mails (ORDERCHAT_SMTP_*).
    smtp: SmtpSettings | None = None
    # Webhooks and push endpoints on loopback or private addresses (an intranet, tests).
    allow_private_targets: bool = False
    # What hashing a password costs (ORDERCHAT_PASSWORD_*).
    password_cost: PasswordCost = field(default_factory=PasswordCost)
    # Calls: how many may join, how long a call rings and waits for a dropped party.
    call_rules: CallRules = field(default_factory=CallRules)
    # STUN/TURN servers handed to browsers (ORDERCHAT_TURN_SECRET signs TURN credentials).
    ice: IceConfig = field(default_factory=IceConfig)
    # Sites whose pages may frame /chat (the widget); empty: any site (docs/consults.md).
    widget_origins: tuple[str, ...] = ()
    # The largest picture or voice note a visitor without an order may send.
    visitor_max_upload_bytes: int = 10 * 1024**2

    @property
    def link_base(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def workflows_dir(self) -> Path:
        return self.data_dir / "workflows"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'orderchat.db').resolve()}"
