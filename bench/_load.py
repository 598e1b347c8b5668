"""The load generator: WebSocket clients in worker processes, driven from the harness.

Each worker is a separate process (multiprocessing, "spawn") running a uvloop
event loop. It holds the connections of its share of the users, says hello on
each with the project's own frame code, and then, step by step, sends its share
of an aggregate rate on a fixed schedule (open loop: it never waits for acks).

Every message's text starts with the wall-clock time it was sent
(`time.time_ns()`, shared by all processes on one machine) and its `ref`, which
is unique in the run and starts with the step number. Each receiving connection
records the latency of every message it gets from somebody else, drops and
counts one it already had (same ref), and ignores (counts as late) one from an
earlier step. A worker keeps its latencies in an `array('q')` and hands them to
the harness as raw bytes once the step is over.

The harness drives the workers through a pipe each:

    (start)    -> ("ready",)
    connect    -> ("connected", opened, failed, errors, seconds)   adds connections
    plan       -> ("planned",)            who sends where, with which weight
    step       -> ("sent", sent, expected_deliveries, max_lag_s, errors)
    count      -> ("count", unique deliveries so far in this step)
    finish     -> ("result", {...counters...}, latency bytes)
    stats      -> ("stats", {...counters, open connections...})
    disconnect -> ("disconnected",)       every connection closed; ready for another target
    close      -> ("closed",)             and the process exits

Losses of a step are the expected deliveries (every other member of the
conversation for each message sent) minus the unique deliveries seen by the
time the drain is over.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import multiprocessing
import os
import random
import resource
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from typing import Any

import orjson
import uvloop
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from orderchat.core.model import MessageKind
from orderchat.protocol.codec import encode_client_frame
from orderchat.protocol.frames import Hello, PostMessage

CONNECT_TIMEOUT_S = 30.0
REPLY_TIMEOUT_S = 120.0
TEXT_CHARS = 100  # every message's text is padded to this length
MAX_ERRORS_KEPT = 20
COUNT_POLL_S = 0.1
START_DELAY_S = 0.2  # a step starts this long after the harness says so, in all workers at once


# --- what the harness hands to the workers -----------------------------------------


@dataclass(frozen=True, slots=True)
class LoadUser:
    """A user to connect: `token` goes into hello, `user_id` is the `sender` of their messages."""

    index: int
    user_id: str
    token: str


@dataclass(frozen=True, slots=True)
class LoadConversation:
    conv_id: str
    members: tuple[int, ...]  # LoadUser.index of each member
    weight: float  # share of all messages sent in this conversation


@dataclass(frozen=True, slots=True)
class _Sender:
    """One member of one conversation as a source of messages."""

    slot: int  # the worker's connection slot of the sending user
    conv_id: str
    recipients: int  # the other members
    weight: float


# --- measures of the server process ------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far, in seconds (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            text = stat.read()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is the state (field 3 of stat); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds spent on anything but idle and I/O wait by all cores, from /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    # guest time is already counted in user and nice
    busy = sum(fields[:8]) - idle
    return busy / os.sysconf("SC_CLK_TCK")


def raise_fd_limit() -> int:
    """Raise the soft limit on open files to the hard limit; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def percentile(sorted_values: Sequence[int], fraction: float) -> int:
    """Nearest-rank percentile of sorted values; 0 for none."""
    if not sorted_values:
        return 0
    rank = max(1, min(len(sorted_values), int(-(-fraction * len(sorted_values) // 1))))
    return int(sorted_values[rank - 1])


# --- the harness's side --------------------------------------------------------------


@dataclass
class StepResult:
    rate: float  # offered, msg/s
    duration_s: float
    sent: int
    expected: int
    unique: int
    duplicates: int
    late: int
    errors: int
    closed: int
    max_lag_ms: float  # how far the slowest worker fell behind its schedule
    send_seconds: float  # from the step's start until the last worker had sent everything
    drain_seconds: float
    latencies_ns: list[int] = field(repr=False)  # sorted
    error_texts: list[str] = field(default_factory=list)
    probe_start: tuple[float, ...] = ()
    probe_end: tuple[float, ...] = ()

    @property
    def losses(self) -> int:
        return max(self.expected - self.unique, 0)

    def latency_ms(self, fraction: float) -> float:
        return percentile(self.latencies_ns, fraction) / 1e6

    @property
    def max_ms(self) -> float:
        return self.latencies_ns[-1] / 1e6 if self.latencies_ns else 0.0


class WorkerError(RuntimeError):
    """A worker process died or did not answer in time."""


class LoadPool:
    """Worker processes holding WebSocket connections; users are dealt out round-robin."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("at least one worker process")
        self.workers = workers
        self._context = multiprocessing.get_context("spawn")
        self._pipes: list[Pipe] = []
        self._procs: list[Any] = []
        self._slots: dict[int, tuple[int, int]] = {}  # user index -> (worker, slot)
        self._counts = [0] * workers  # slots taken in each worker
        self._opened = 0
        self._step = 0
        self._shares: list[float] = []

    # life

    def start(self, wait: bool = True) -> None:
        """Spawn the workers; without `wait`, their start-up overlaps with the caller's work."""
        for number in range(self.workers):
            parent, child = self._context.Pipe(duplex=True)
            proc = self._context.Process(
                target=worker_main, args=(child, number), name=f"bench-load-{number}", daemon=True
            )
            proc.start()
            child.close()
            self._pipes.append(parent)
            self._procs.append(proc)
        if wait:
            for number in range(self.workers):
                self._expect(number, "ready")

    def close(self) -> None:
        for pipe in self._pipes:
            with contextlib.suppress(OSError, BrokenPipeError):
                pipe.send(("close",))
        for number, pipe in enumerate(self._pipes):
            with contextlib.suppress(OSError, EOFError, WorkerError):
                if pipe.poll(15):
                    pipe.recv()
            proc = self._procs[number]
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
            pipe.close()
        self._pipes.clear()
        self._procs.clear()

    def __enter__(self) -> LoadPool:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def disconnect(self) -> None:
        """Close every connection, so that the workers can serve another target."""
        self._send_all([("disconnect",)] * self.workers)
        for number in range(self.workers):
            self._expect(number, "disconnected")
        self._slots.clear()
        self._counts = [0] * self.workers
        self._opened = 0
        self._shares = []

    @property
    def pids(self) -> list[int]:
        return [int(proc.pid) for proc in self._procs]

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def connection_count(self) -> int:
        return self._opened

    # talking to the workers

    def _send_all(self, messages: Sequence[tuple[Any, ...]]) -> None:
        for pipe, message in zip(self._pipes, messages, strict=True):
            pipe.send(message)

    def _expect(self, number: int, kind: str, timeout: float = REPLY_TIMEOUT_S) -> tuple[Any, ...]:
        pipe = self._pipes[number]
        proc = self._procs[number]
        deadline = time.monotonic() + timeout
        while True:
            if pipe.poll(0.2):
                try:
                    reply: tuple[Any, ...] = pipe.recv()
                except EOFError as exc:
                    raise WorkerError(f"load worker {number} went away") from exc
                if reply[0] == "ready" and kind != "ready":
                    continue  # a worker started without waiting for it
                if reply[0] == "failed":
                    raise WorkerError(f"load worker {number} failed:\n{reply[1]}")
                if reply[0] != kind:
                    raise WorkerError(f"load worker {number}: expected {kind!r}, got {reply[0]!r}")
                return reply
            if not proc.is_alive():
                raise WorkerError(f"load worker {number} exited with {proc.exitcode}")
            if time.monotonic() > deadline:
                raise WorkerError(f"load worker {number} did not answer {kind!r} in {timeout} s")

    # connections

    def connect(
        self, ws_url: str, users: Sequence[LoadUser], concurrency: int = 64
    ) -> tuple[int, list[str]]:
        """Open one connection per user, spread over the workers; (opened, errors)."""
        shares: list[list[LoadUser]] = [[] for _ in range(self.workers)]
        for user in users:
            number = len(self._slots) % self.workers
            self._slots[user.index] = (number, self._counts[number] + len(shares[number]))
            shares[number].append(user)
        self._send_all(
            [
                ("connect", ws_url, [(u.index, u.user_id, u.token) for u in share], concurrency)
                for share in shares
            ]
        )
        opened = 0
        errors: list[str] = []
        timeout = CONNECT_TIMEOUT_S + len(users) / 50
        for number in range(self.workers):
            _, count, _failed, texts, _seconds = self._expect(number, "connected", timeout)
            opened += count
            self._counts[number] += len(shares[number])
            errors.extend(texts)
        self._opened += opened
        return opened, errors[:MAX_ERRORS_KEPT]

    def stats(self) -> dict[str, Any]:
        """Counters summed over the workers (open connections, closed ones, errors)."""
        self._send_all([("stats",)] * self.workers)
        total: dict[str, Any] = {"error_texts": []}
        for number in range(self.workers):
            counters = self._expect(number, "stats")[1]
            for key, value in counters.items():
                if key == "error_texts":
                    total[key].extend(value)
                else:
                    total[key] = total.get(key, 0) + value
        total["error_texts"] = total["error_texts"][:MAX_ERRORS_KEPT]
        return total

    def plan(self, conversations: Sequence[LoadConversation]) -> list[float]:
        """Tell each worker which of its users send where; each worker's share of the rate."""
        total = sum(c.weight for c in conversations)
        tables: list[list[_Sender]] = [[] for _ in range(self.workers)]
        for conv in conversations:
            per_member = conv.weight / total / len(conv.members)
            for member in conv.members:
                number, slot = self._slots[member]
                tables[number].append(
                    _Sender(slot, conv.conv_id, len(conv.members) - 1, per_member)
                )
        shares = [sum(s.weight for s in table) for table in tables]
        self._send_all(
            [
                ("plan", [(s.slot, s.conv_id, s.recipients, s.weight) for s in table])
                for table in tables
            ]
        )
        for number in range(self.workers):
            self._expect(number, "planned")
        self._shares = shares
        return shares

    def run_step(
        self,
        rate: float,
        duration_s: float,
        drain_s: float,
        max_drain_s: float,
        seed: int = 0,
        probe: Callable[[], tuple[float, ...]] | None = None,
    ) -> StepResult:
        """One step at an aggregate `rate` for `duration_s`, then the drain.

        The drain ends when every expected delivery is in, when no new one came
        for `drain_s`, or after `max_drain_s`. `probe` (CPU counters, say) is
        called when the sending starts and when the last worker has sent all.
        """
        self._step += 1
        step = self._step
        start_wall_ns = time.time_ns() + int(START_DELAY_S * 1e9)
        self._send_all(
            [
                ("step", step, start_wall_ns, duration_s, rate * share, seed * 1000 + number)
                for number, share in enumerate(self._shares)
            ]
        )
        time.sleep(max(0.0, (start_wall_ns - time.time_ns()) / 1e9))
        started = time.monotonic()
        probe_start = probe() if probe is not None else ()
        sent = expected = 0
        max_lag = 0.0
        error_texts: list[str] = []
        for number in range(self.workers):
            _, w_sent, w_expected, w_lag, w_errors = self._expect(
                number, "sent", duration_s * 4 + REPLY_TIMEOUT_S
            )
            sent += w_sent
            expected += w_expected
            max_lag = max(max_lag, w_lag)
            error_texts.extend(w_errors)
        ended = time.monotonic()
        probe_end = probe() if probe is not None else ()
        # Drain: until every expected delivery is in, or nothing new came for a while.
        hard_deadline = ended + max_drain_s
        last_unique = -1
        last_progress = ended
        while True:
            self._send_all([("count",)] * self.workers)
            unique = sum(int(self._expect(n, "count")[1]) for n in range(self.workers))
            now = time.monotonic()
            if unique != last_unique:
                last_unique = unique
                last_progress = now
            if unique >= expected or now - last_progress >= drain_s or now >= hard_deadline:
                break
            time.sleep(COUNT_POLL_S)
        drained = time.monotonic()
        self._send_all([("finish",)] * self.workers)
        latencies: list[int] = []
        totals = {"unique": 0, "duplicates": 0, "late": 0, "errors": 0, "closed": 0}
        for number in range(self.workers):
            _, counters, raw = self._expect(number, "result")
            for key in totals:
                totals[key] += int(counters[key])
            error_texts.extend(counters["error_texts"])
            values = array.array("q")
            values.frombytes(raw)
            latencies.extend(values)
        latencies.sort()
        result = StepResult(
            rate=rate,
            duration_s=duration_s,
            sent=sent,
            expected=expected,
            unique=totals["unique"],
            duplicates=totals["duplicates"],
            late=totals["late"],
            errors=totals["errors"],
            closed=totals["closed"],
            max_lag_ms=max_lag * 1000,
            send_seconds=ended - started,
            drain_seconds=drained - ended,
            latencies_ns=latencies,
            error_texts=error_texts[:MAX_ERRORS_KEPT],
            probe_start=probe_start,
            probe_end=probe_end,
        )
        return result


@contextlib.contextmanager
def load_pool(workers: int) -> Iterator[LoadPool]:
    """Worker processes, started (in the background) and closed afterwards."""
    pool = LoadPool(workers)
    try:
        pool.start(wait=False)
        yield pool
    finally:
        pool.close()


def default_workers() -> int:
    """Worker processes: as many as there are cores, two at least and four at most."""
    return max(2, min(4, os.cpu_count() or 2))


# --- the worker's side ---------------------------------------------------------------


def worker_main(pipe: Pipe, number: int) -> None:
    """Entry point of a worker process."""
    raise_fd_limit()
    try:
        uvloop.run(_Worker(pipe, number).serve())
    except BaseException:
        with contextlib.suppress(OSError, BrokenPipeError):
            pipe.send(("failed", traceback.format_exc()))
        raise


class _Client:
    """One connection of one user, with the refs it has seen in the current step."""

    __slots__ = ("gone", "seen", "user_id", "ws")

    def __init__(self, ws: Any, user_id: str) -> None:
        self.ws = ws
        self.user_id = user_id
        self.seen: set[str] = set()
        self.gone = False  # the connection closed under us


class _Worker:
    def __init__(self, pipe: Pipe, number: int) -> None:
        self.pipe = pipe
        self.number = number
        self.clients: list[_Client] = []
        self.readers: list[asyncio.Task[None]] = []
        self.senders: list[_Sender] = []
        self.cum_weights: list[float] = []
        self.commands: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self.step = 0
        self.step_prefix = ""
        self.latencies = array.array("q")
        self.unique = 0
        self.duplicates = 0
        self.late = 0
        self.errors = 0
        self.closed = 0
        self.error_texts: list[str] = []
        self.sending: asyncio.Task[None] | None = None

    def _note_error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_texts) < MAX_ERRORS_KEPT:
            self.error_texts.append(text)

    def _listen(self, loop: asyncio.AbstractEventLoop) -> None:
        """A thread's loop: block on the pipe, hand each command to the event loop.

        The event loop itself only ever writes to the pipe, with blocking writes:
        a result of several MiB must not meet a non-blocking socket.
        """
        while True:
            try:
                command = self.pipe.recv()
            except (EOFError, OSError):
                command = ("close",)
            loop.call_soon_threadsafe(self.commands.put_nowait, command)
            if command[0] == "close":
                return

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        listener = threading.Thread(
            target=self._listen, args=(loop,), name="pipe-listener", daemon=True
        )
        listener.start()
        self.pipe.send(("ready",))
        try:
            while True:
                command = await self.commands.get()
                kind = command[0]
                if kind == "connect":
                    self.pipe.send(await self._connect(command[1], command[2], command[3]))
                elif kind == "plan":
                    self.senders = [_Sender(*row) for row in command[1]]
                    total = 0.0
                    self.cum_weights = []
                    for sender in self.senders:
                        total += sender.weight
                        self.cum_weights.append(total)
                    self.pipe.send(("planned",))
                elif kind == "step":
                    self._begin_step(command[1])
                    self.sending = asyncio.create_task(self._send_step(*command[2:]))
                elif kind == "count":
                    self.pipe.send(("count", self.unique))
                elif kind == "finish":
                    self._finish()
                elif kind == "stats":
                    self.pipe.send(("stats", self._counters()))
                elif kind == "disconnect":
                    await self._close_all()
                    self.pipe.send(("disconnected",))
                elif kind == "close":
                    await self._close_all()
                    self.pipe.send(("closed",))
                    return
        finally:
            listener.join(1)

    # connecting

    async def _connect(
        self, ws_url: str, users: list[tuple[int, str, str]], concurrency: int
    ) -> tuple[Any, ...]:
        started = time.monotonic()
        gate = asyncio.Semaphore(max(1, concurrency))
        results: list[_Client | None] = [None] * len(users)
        failures: list[str] = []

        async def one(position: int, user_id: str, token: str) -> None:
            async with gate:
                try:
                    results[position] = await self._open(ws_url, user_id, token, position)
                except Exception as exc:  # reported, not raised: the harness decides
                    failures.append(f"connect {user_id}: {type(exc).__name__}: {exc}")

        async with asyncio.TaskGroup() as group:
            for position, (_index, user_id, token) in enumerate(users):
                group.create_task(one(position, user_id, token))
        opened = 0
        for position, client in enumerate(results):
            # A failed connection still takes its slot, so that the harness's slot
            # numbers hold; its user never sends (the harness sees the failure).
            if client is None:
                self.clients.append(_Client(None, users[position][1]))
                continue
            self.clients.append(client)
            self.readers.append(asyncio.create_task(self._read(client)))
            opened += 1
        return (
            "connected",
            opened,
            len(failures),
            failures[:MAX_ERRORS_KEPT],
            time.monotonic() - started,
        )

    async def _open(self, ws_url: str, user_id: str, token: str, position: int) -> _Client:

        ws = await connect(
            ws_url,
            max_size=None,
            max_queue=4096,
            compression=None,
            ping_interval=None,
            open_timeout=CONNECT_TIMEOUT_S,
            close_timeout=1,
            proxy=None,
        )
        try:
            device = f"bench-{self.number}-{position}"
            await ws.send(encode_client_frame(Hello(token, device, None)), text=True)
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                first = await ws.recv()
            frame = orjson.loads(first)
            if frame.get("op") != "welcome":
                raise RuntimeError(f"expected welcome, got {str(first)[:200]}")
        except BaseException:
            await ws.close()
            raise
        return _Client(ws, user_id)

    async def _read(self, client: _Client) -> None:
        ws = client.ws
        me = client.user_id
        clock = time.time_ns
        loads = orjson.loads
        try:
            async for raw in ws:
                now = clock()
                frame = loads(raw)
                op = frame.get("op")
                if op == "message":
                    if frame.get("sender") == me:
                        continue
                    ref = frame.get("ref") or ""
                    if not ref.startswith(self.step_prefix):
                        self.late += 1
                        continue
                    seen = client.seen
                    if ref in seen:
                        self.duplicates += 1
                        continue
                    seen.add(ref)
                    self.unique += 1
                    text: str = frame.get("text") or ""
                    sent_at = text.partition(" ")[0]
                    if sent_at.isdigit():
                        self.latencies.append(now - int(sent_at))
                elif op == "error":
                    self._note_error(f"error frame: {str(raw)[:300]}")
            reason = f"closed normally ({ws.close_code} {ws.close_reason})"
        except ConnectionClosed as exc:
            reason = f"closed: {exc}"
        except Exception as exc:
            self._note_error(f"reader of {me}: {type(exc).__name__}: {exc}")
            reason = ""
        client.gone = True
        if reason and not self._closing:
            self.closed += 1
            self._note_error(f"connection of {me} {reason}")

    _closing = False

    # steps

    def _begin_step(self, step: int) -> None:
        self.step = step
        self.step_prefix = f"{step}."
        self.latencies = array.array("q")
        self.unique = self.duplicates = self.late = self.errors = self.closed = 0
        self.error_texts = []
        for client in self.clients:
            client.seen = set()

    async def _send_step(
        self, start_wall_ns: int, duration_s: float, rate: float, seed: int
    ) -> None:

        loop = asyncio.get_running_loop()
        total = round(rate * duration_s) if self.senders else 0
        picks = (
            random.Random(seed).choices(
                range(len(self.senders)), cum_weights=self.cum_weights, k=total
            )
            if total
            else []
        )
        start = loop.time() + max(0.0, (start_wall_ns - time.time_ns()) / 1e9)
        await asyncio.sleep(max(0.0, start - loop.time()))
        sent = expected = 0
        max_lag = 0.0
        prefix = f"{self.step}.{self.number}."
        clients = self.clients
        senders = self.senders
        text_kind = MessageKind.TEXT
        index = 0
        send_errors: list[str] = []
        while index < total:
            now = loop.time()
            due = min(total, int((now - start) * rate) + 1)
            while index < due:
                sender = senders[picks[index]]
                client = clients[sender.slot]
                ref = prefix + str(index)
                lag = loop.time() - (start + index / rate)
                max_lag = max(max_lag, lag)
                text = f"{time.time_ns()} {ref} ".ljust(TEXT_CHARS, ".")
                frame = encode_client_frame(
                    PostMessage(ref, sender.conv_id, text_kind, text, (), (), None)
                )
                index += 1
                if client.ws is None:
                    continue
                try:
                    await client.ws.send(frame, text=True)
                except ConnectionClosed as exc:
                    if len(send_errors) < MAX_ERRORS_KEPT:
                        send_errors.append(f"send on a closed connection: {exc}")
                    continue
                sent += 1
                expected += sender.recipients
            if index < total:
                next_due = start + index / rate
                await asyncio.sleep(max(0.001, next_due - loop.time()))
        self.pipe.send(("sent", sent, expected, max_lag, send_errors))

    def _counters(self) -> dict[str, Any]:
        return {
            "unique": self.unique,
            "duplicates": self.duplicates,
            "late": self.late,
            "errors": self.errors,
            "closed": self.closed,
            "open": sum(1 for c in self.clients if c.ws is not None and not c.gone),
            "error_texts": self.error_texts,
        }

    def _finish(self) -> None:
        counters = self._counters()
        raw = self.latencies.tobytes()
        self.step_prefix = "\x00"  # anything arriving from now on is late
        self.pipe.send(("result", counters, raw))

    async def _close_all(self) -> None:
        self._closing = True
        if self.sending is not None:
            self.sending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.sending
        open_ones = [c.ws for c in self.clients if c.ws is not None]
        for start in range(0, len(open_ones), 500):
            await asyncio.gather(
                *(ws.close() for ws in open_ones[start : start + 500]), return_exceptions=True
            )
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
        self.clients = []
        self.readers = []
        self.senders = []
        self.cum_weights = []
        self.sending = None
        self._closing = False
