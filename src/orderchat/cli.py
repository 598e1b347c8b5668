"""The `orderchat` command: serve, user (see user_cli.py), skus (skus_cli.py), chat, digest,
verify (proof_cli.py) and export (dossier_cli.py)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from orderchat.core.calls import CallRules
from orderchat.core.passwords import PasswordCost
from orderchat.core.turn import IceConfig
from orderchat.notify.mail import SmtpSettings
from orderchat.settings import Settings
from orderchat.skus_cli import add_skus_commands, run_skus_command
from orderchat.user_cli import (
    DEFAULT_DATA_DIR,
    add_user_commands,
    password_cost_from_env,
    run_user_command,
)

WS_MAX_FRAME_BYTES = 1024 * 1024


def _on_off(value: str) -> bool:
    if value not in ("on", "off"):
        raise argparse.ArgumentTypeError("expected 'on' or 'off'")
    return value == "on"


def _hhmm(value: str) -> str:
    from orderchat.core.errors import BadRequest
    from orderchat.services.money.digest import parse_hhmm

    try:
        parse_hhmm(value)
    except BadRequest as exc:
        raise argparse.ArgumentTypeError(exc.message) from None
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orderchat", description="OrderChat server and tools")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_serve(commands.add_parser("serve", help="run the server"))

    add_user_commands(commands, _database_url)
    add_skus_commands(commands, _database_url)

    commands.add_parser("chat", help="a terminal chat client", add_help=False)
    commands.add_parser("search", help="search messages as a staff member", add_help=False)
    commands.add_parser("digest", help="print (or post) the daily reconciliation", add_help=False)
    commands.add_parser("verify", help="check the hash chains, or a dossier ZIP", add_help=False)
    commands.add_parser("export", help="write one order's dossier ZIP", add_help=False)
    commands.add_parser("qr", help="write the QR code of the pre-sales chat", add_help=False)
    return parser


def _add_serve(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    serve.add_argument(
        "--database",
        type=_database_url,
        help="sqlite+aiosqlite:///PATH or postgresql://USER@HOST:PORT/DB; "
        "default: orderchat.db under --data-dir",
    )
    serve.add_argument(
        "--redis", type=_redis_url, help="redis://HOST:PORT/DB for fan-out across processes"
    )
    serve.add_argument("--node-name", help="this process's name in a cluster (default host-pid)")
    serve.add_argument("--demo", action="store_true", help="seed demo staff and chats")
    serve.add_argument("--rate-limits", type=_on_off, default=True, metavar="on|off")
    serve.add_argument(
        "--search-index",
        type=_on_off,
        default=True,
        metavar="on|off",
        help="index messages for search as they are stored (off: what is sent is never found)",
    )
    serve.add_argument("--recall-window-s", type=float, default=120.0)
    serve.add_argument("--session-ttl-s", type=float, default=30 * 24 * 3600.0)
    serve.add_argument("--ws-queue-frames", type=int, default=4096)
    serve.add_argument(
        "--digest-time",
        type=_hhmm,
        default="08:00",
        metavar="HH:MM",
        help="local time the daily reconciliation digest is posted to #finance",
    )
    _add_upload_options(serve)
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--webhook-secret",
        default=os.environ.get("ORDERCHAT_WEBHOOK_SECRET"),
        help="shared secret for signed order webhooks (default: $ORDERCHAT_WEBHOOK_SECRET); "
        "without one, /api/webhooks/orders answers 404",
    )
    serve.add_argument(
        "--public-url",
        default=os.environ.get("ORDERCHAT_PUBLIC_URL"),
        help="the https:// address people open OrderChat at, for links in pushes and mails",
    )
    serve.add_argument("--shop-name", default=os.environ.get("ORDERCHAT_SHOP_NAME", "OrderChat"))
    _add_call_options(serve)
    serve.add_argument(
        "--allow-private-targets",
        action="store_true",
        help="let webhooks and push endpoints be loopback or private addresses",
    )
    _add_consult_options(serve)


def _add_consult_options(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--widget-origin",
        action="append",
        default=_env_list("ORDERCHAT_WIDGET_ORIGINS"),
        help="https://shop.example, repeatable: a site whose pages may embed the chat widget "
        "(default: $ORDERCHAT_WIDGET_ORIGINS; none given, any site may)",
    )
    serve.add_argument(
        "--visitor-max-upload-mb",
        type=_positive,
        default=10,
        help="largest picture or voice note a visitor without an order may send (10)",
    )


def _add_call_options(serve: argparse.ArgumentParser) -> None:
    calls = serve.add_argument_group("calls")
    calls.add_argument(
        "--call-max-participants", type=_positive, default=4, help="people in one call (mesh)"
    )
    calls.add_argument("--call-ring-timeout-s", type=float, default=30.0)
    calls.add_argument("--call-rejoin-grace-s", type=float, default=30.0)
    calls.add_argument(
        "--call-keepalive-s",
        type=float,
        default=10.0,
        help="how often a node vouches for its joined callers; silent for 3x, they have left",
    )
    calls.add_argument(
        "--stun-url",
        action="append",
        default=_env_list("ORDERCHAT_STUN_URLS"),
        help="stun:HOST:PORT, repeatable (default: $ORDERCHAT_STUN_URLS, comma-separated)",
    )
    calls.add_argument(
        "--turn-url",
        action="append",
        default=_env_list("ORDERCHAT_TURN_URLS"),
        help="turn:HOST:PORT?transport=udp, repeatable (default: $ORDERCHAT_TURN_URLS); "
        "credentials are signed with $ORDERCHAT_TURN_SECRET, coturn's static-auth-secret",
    )
    calls.add_argument("--turn-ttl-s", type=_positive, default=4 * 3600)
    calls.add_argument(
        "--call-relay-only",
        action="store_true",
        help="media only through TURN, so no party learns another's IP addresses",
    )


def _add_upload_options(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--max-upload-bytes", type=_positive, default=2 * 1024**3, help="largest file (2 GiB)"
    )
    serve.add_argument(
        "--upload-quota-bytes",
        type=_positive,
        default=20 * 1024**3,
        help="all of one user's uploads together (20 GiB)",
    )
    serve.add_argument(
        "--upload-ttl-s",
        type=float,
        default=24 * 3600.0,
        help="an unfinished upload is deleted after this long (24 h)",
    )
    serve.add_argument("--preview-timeout-s", type=float, default=120.0)


def _env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def _call_rules(args: argparse.Namespace) -> CallRules:
    if args.call_max_participants < 2:
        raise SystemExit("orderchat: --call-max-participants must be at least 2")
    return CallRules(
        max_participants=args.call_max_participants,
        ring_timeout_ms=int(args.call_ring_timeout_s * 1000),
        rejoin_grace_ms=int(args.call_rejoin_grace_s * 1000),
        keepalive_ms=max(100, int(args.call_keepalive_s * 1000)),
    )


def _ice(args: argparse.Namespace) -> IceConfig:
    ice = IceConfig(
        stun_urls=tuple(args.stun_url),
        turn_urls=tuple(args.turn_url),
        turn_secret=os.environ.get("ORDERCHAT_TURN_SECRET") or None,
        credential_ttl_s=args.turn_ttl_s,
        relay_only=args.call_relay_only,
    )
    if ice.turn_urls and ice.turn_secret is None:
        logging.getLogger("orderchat").warning(
            "--turn-url without ORDERCHAT_TURN_SECRET: TURN is not offered to browsers"
        )
    return ice


def _database_url(raw: str) -> str:
    """`--database`: a SQLite or a PostgreSQL URL."""
    from orderchat.storage.engine import database_arg

    try:
        return database_arg(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _redis_url(raw: str) -> str:
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise argparse.ArgumentTypeError(f"{raw!r} is not a redis:// URL")
    return raw


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _smtp_from_env() -> SmtpSettings | None:
    try:
        return SmtpSettings.from_env(os.environ)
    except ValueError as exc:
        raise SystemExit(f"orderchat: ORDERCHAT_SMTP_*: {exc}") from None


def _warn_of_a_cheap_password_cost(cost: PasswordCost) -> None:
    if cost.below_default:
        logging.getLogger("orderchat").warning(
            "passwords are hashed below the recommended cost (time %d, %d KiB)",
            cost.time_cost,
            cost.memory_kib,
        )


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(
        data_dir=args.data_dir,
        database_url=args.database,
        redis_url=args.redis,
        node_name=args.node_name,
        host=args.host,
        port=args.port,
        demo=args.demo,
        rate_limits=args.rate_limits,
        search_index=args.search_index,
        recall_window_s=args.recall_window_s,
        session_ttl_s=args.session_ttl_s,
        ws_queue_frames=args.ws_queue_frames,
        webhook_secret=args.webhook_secret or None,
        digest_time=args.digest_time,
        max_upload_bytes=args.max_upload_bytes,
        upload_quota_bytes=args.upload_quota_bytes,
        preview_timeout_s=args.preview_timeout_s,
        upload_ttl_s=args.upload_ttl_s,
        public_url=args.public_url,
        shop_name=args.shop_name,
        smtp=_smtp_from_env(),
        allow_private_targets=args.allow_private_targets,
        password_cost=password_cost_from_env(),
        call_rules=_call_rules(args),
        ice=_ice(args),
        widget_origins=tuple(args.widget_origin),
        visitor_max_upload_bytes=args.visitor_max_upload_mb * 1024**2,
    )


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from orderchat.api.app import create_app
    from orderchat.storage.engine import is_postgres_url

    if args.redis and not (args.database and is_postgres_url(args.database)):
        print(
            "orderchat: --redis connects several processes on one PostgreSQL database;"
            " give --database postgresql://… too (SQLite serves one process)",
            file=sys.stderr,
        )
        return 2
    settings = _settings(args)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    _warn_of_a_cheap_password_cost(settings.password_cost)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        ws_max_size=WS_MAX_FRAME_BYTES,
        # Chat frames are a few hundred bytes: compressing each costs more CPU, and
        # a zlib context per connection more memory, than the bytes it saves.
        ws_per_message_deflate=False,
        # uvicorn says "connection open/closed" for every WebSocket at info.
        log_level="warning" if args.log_level == "info" else args.log_level,
        access_log=False,
        lifespan="on",
    )
    uvicorn.Server(config).run()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["digest"]:
        from orderchat.digest_cli import main as digest_main

        return digest_main(argv[1:])
    if argv[:1] == ["verify"]:
        from orderchat.proof_cli import main as verify_main

        return verify_main(argv[1:])
    if argv[:1] == ["export"]:
        from orderchat.dossier_cli import main as export_main

        return export_main(argv[1:])
    if argv[:1] == ["search"]:
        from orderchat.search_cli import main as search_main

        return search_main(argv[1:])
    if argv[:1] == ["qr"]:
        from orderchat.qr_cli import main as qr_main

        return qr_main(argv[1:])
    if argv[:1] == ["chat"]:
        from orderchat.client.terminal import main as chat_main

        return chat_main(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "skus":
        return run_skus_command(args)
    return run_user_command(args)
