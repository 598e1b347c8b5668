"""The `notify` workload's receivers — push service, SMTP server, webhook endpoint — in a process.

They are the test suite's own (tests/push_service.py checks every VAPID token
and decrypts every payload as a browser and its push service do;
tests/mail_support.py is aiosmtpd; tests/webhook_receiver.py a threaded HTTP
endpoint), each stamping the moment a delivery arrived. They run in a child
process of their own so that their work (an ECDH and an ECDSA check per push,
parsing every mail) neither waits for the harness's GIL nor holds it up, and
so that their CPU can be read on its own.

The harness talks to the child through a pipe:

    (start)              -> ("ready", smtp_port, webhook_port)
    subscribe, key, n    -> ("subscribed", [(subscription id, PushSubscription.toJSON())])
    counts               -> ("counts", {"push": n, "mail": mails, "mail_items": tags, ...})
    take                 -> ("taken", Taken)      and forget them: the next phase starts at 0
    close                -> ("closed",)           and the process exits

Each delivery is handed over as the tags found in it (see `TAG`), so the
harness can tell which message it was and check that each arrived once.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import re
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from typing import Any

import orjson

from bench._load import cpu_seconds

# A message's tag: `nb` and six digits, written at the start of its text.
TAG = re.compile(r"\bnb\d{6}\b")
# A push that stands for several messages counts them in its title; a mail's line
# for several says how many came before the one it quotes (core/text_table.py).
PUSH_MERGED = re.compile(r"\((\d+) new messages\)|（(\d+) 条新消息）")
MAIL_EARLIER = re.compile(r"(?:\((\d+) earlier\)|（此前还有 (\d+) 条）)\s*(nb\d{6})")
REPLY_TIMEOUT_S = 60.0
MAX_REFUSALS_KEPT = 20


def tag_of(index: int) -> str:
    return f"nb{index:06d}"


@dataclass(frozen=True, slots=True)
class Push:
    subscription_id: str
    tags: tuple[str, ...]
    received_at: float
    earlier: int = 0  # messages before the tagged one that this push stands for too


@dataclass(frozen=True, slots=True)
class Mail:
    recipients: tuple[str, ...]
    tags: tuple[str, ...]
    received_at: float
    earlier: tuple[int, ...] = ()  # for each tag, as Push.earlier


@dataclass(frozen=True, slots=True)
class Hook:
    path: str
    delivery_id: str
    tags: tuple[str, ...]
    received_at: float


@dataclass
class Taken:
    """Everything that arrived since the last `take`, and what the push service refused."""

    pushes: list[Push] = field(default_factory=list)
    mails: list[Mail] = field(default_factory=list)
    hooks: list[Hook] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    refused: int = 0


class ReceiverError(RuntimeError):
    """The receivers' process died, or did not answer in time."""


class Receivers:
    """The harness's side: a child process holding the three receivers."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe(duplex=True)
        self._proc = context.Process(
            target=receivers_main, args=(child,), name="bench-notify-receivers", daemon=True
        )
        self._proc.start()
        child.close()
        _, self.smtp_port, self.webhook_port = self._ask(("start",), "ready")

    @property
    def pid(self) -> int:
        return int(self._proc.pid or 0)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def webhook_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.webhook_port}/hook/{name}"

    def subscribe(self, public_key: str, count: int) -> list[tuple[str, dict[str, Any]]]:
        """`count` new push subscriptions bound to the server's key: (id, toJSON()) each."""
        subscribed: list[tuple[str, dict[str, Any]]] = self._ask(
            ("subscribe", public_key, count), "subscribed"
        )[1]
        return subscribed

    def counts(self) -> dict[str, int]:
        counted: dict[str, int] = self._ask(("counts",), "counts")[1]
        return counted

    def take(self) -> Taken:
        taken: Taken = self._ask(("take",), "taken")[1]
        return taken

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError, ReceiverError):
            self._ask(("close",), "closed", timeout=15)
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)
        self._pipe.close()

    def _ask(
        self, command: tuple[Any, ...], kind: str, timeout: float = REPLY_TIMEOUT_S
    ) -> tuple[Any, ...]:
        if command[0] != "start":
            self._pipe.send(command)
        deadline = time.monotonic() + timeout
        while not self._pipe.poll(0.2):
            if not self._proc.is_alive():
                raise ReceiverError(f"the receivers exited with {self._proc.exitcode}")
            if time.monotonic() > deadline:
                raise ReceiverError(f"the receivers did not answer {kind!r} in {timeout} s")
        reply: tuple[Any, ...] = self._pipe.recv()
        if reply[0] == "failed":
            raise ReceiverError(f"the receivers failed:\n{reply[1]}")
        if reply[0] != kind:
            raise ReceiverError(f"the receivers answered {reply[0]!r}, not {kind!r}")
        return reply


@contextlib.contextmanager
def running_receivers() -> Iterator[Receivers]:
    receivers = Receivers()
    try:
        yield receivers
    finally:
        receivers.close()


# --- the child's side ----------------------------------------------------------------


def receivers_main(pipe: Pipe) -> None:
    """Entry point of the receivers' process: start all three, then answer the harness."""
    try:
        _serve(pipe)
    except BaseException:
        with contextlib.suppress(OSError, BrokenPipeError):
            pipe.send(("failed", traceback.format_exc()))
        raise


def _serve(pipe: Pipe) -> None:
    # The test suite's receivers: imported here, in the child, where they run.
    from tests.mail_support import Recorder, smtp_server
    from tests.push_service import PushService
    from tests.webhook_receiver import receiving

    recorder = Recorder()
    with PushService() as push, smtp_server(recorder) as smtp_port, receiving() as hooks:
        seen = _Seen(push, recorder, hooks)
        pipe.send(("ready", smtp_port, hooks.port))
        while True:
            command = pipe.recv()
            kind = command[0]
            if kind == "subscribe":
                key, count = command[1], command[2]
                subs = [push.subscribe(application_server_key=key) for _ in range(count)]
                pipe.send(("subscribed", [(s.id, s.to_json()) for s in subs]))
            elif kind == "counts":
                pipe.send(("counts", seen.counts()))
            elif kind == "take":
                pipe.send(("taken", seen.take()))
            elif kind == "close":
                pipe.send(("closed",))
                return


class _Seen:
    """What arrived, turned into tags as it comes, from where the last `take` left off."""

    def __init__(self, push: Any, recorder: Any, hooks: Any) -> None:
        self._push = push
        self._recorder = recorder
        self._hooks = hooks
        self._marks = {"push": 0, "mail": 0, "hook": 0, "refused": 0}
        self._taken = Taken()

    def _catch_up(self) -> None:
        pushes = self._push.deliveries[self._marks["push"] :]
        self._marks["push"] += len(pushes)
        for delivery in pushes:
            shown = orjson.loads(delivery.payload)
            body = str(shown.get("body", ""))
            merged = PUSH_MERGED.search(str(shown.get("title", "")))
            earlier = int(merged.group(1) or merged.group(2)) - 1 if merged else 0
            self._taken.pushes.append(
                Push(
                    delivery.subscription_id,
                    tuple(TAG.findall(body)),
                    delivery.received_at,
                    earlier,
                )
            )
        mails = self._recorder.received[self._marks["mail"] :]
        self._marks["mail"] += len(mails)
        for mail in mails:
            text = mail.message.get_body(preferencelist=("plain",)).get_content()
            tags = tuple(TAG.findall(text))
            before = {
                m.group(3): int(m.group(1) or m.group(2)) for m in MAIL_EARLIER.finditer(text)
            }
            self._taken.mails.append(
                Mail(
                    tuple(mail.rcpt_tos),
                    tags,
                    mail.received_at,
                    tuple(before.get(tag, 0) for tag in tags),
                )
            )
        hooks = self._hooks.received[self._marks["hook"] :]  # a slice is taken whole
        self._marks["hook"] += len(hooks)
        for hook in hooks:
            text = str((orjson.loads(hook.body).get("message") or {}).get("text", ""))
            self._taken.hooks.append(
                Hook(hook.path, hook.delivery, tuple(TAG.findall(text)), hook.received_at)
            )
        refusals = self._push.refusals[self._marks["refused"] :]
        self._marks["refused"] += len(refusals)
        self._taken.refused += len(refusals)
        for refusal in refusals[: MAX_REFUSALS_KEPT - len(self._taken.refusals)]:
            self._taken.refusals.append(f"{refusal.status} {refusal.reason}")

    def counts(self) -> dict[str, int]:
        self._catch_up()
        taken = self._taken
        return {
            "push": sum(1 + p.earlier for p in taken.pushes),
            "push_requests": len(taken.pushes),
            "mail": len(taken.mails),
            "mail_items": sum(len(m.tags) + sum(m.earlier) for m in taken.mails),
            "webhook": len(taken.hooks),
            "refused": taken.refused,
        }

    def take(self) -> Taken:
        self._catch_up()
        taken, self._taken = self._taken, Taken()
        return taken
