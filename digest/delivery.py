"""Delivering the outbox: claim due messages, send them through the mailer, record outcomes.

Up to `mailer.concurrency` messages are in flight at once. Each outcome is committed
(group-committed with the others that finished meanwhile) before its slot takes the next
message, so a kill can leave at most one accepted-but-unrecorded message per slot: the
only messages a crash may send twice. Stopping (SIGTERM, SIGINT) finishes the messages in
flight and gives the rest back; an error storm (many temporary failures in a row) does the
same and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from digest.errors import DigestError, PermanentSendError, TemporarySendError
from digest.mailer import Mailer
from digest.models import OutgoingMessage
from digest.store import ClaimedMessage, DeliveryResult, Store

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Compose = Callable[[list[ClaimedMessage]], list[OutgoingMessage]]
MAX_RETRY_DELAY = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    worker: str  # a name unique to this process, e.g. host:pid
    batch_size: int = 64
    lease: timedelta = timedelta(minutes=5)
    max_attempts: int = 5
    retry_delay: timedelta = timedelta(minutes=1)
    storm_limit: int = 10
    suppress_after: int = 3
    once: bool = True  # stop when nothing is due, instead of waiting for more
    poll_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class Delivered:
    subscriber: str
    outcome: str  # "sent", "retry", "failed"
    detail: str
    next_attempt_at: datetime | None = None


@dataclass(slots=True)
class DeliveryReport:
    results: list[Delivered] = field(default_factory=list)
    storm: str | None = None  # why delivery paused, if it did
    stopped: bool = False  # a signal asked us to stop

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)


class _Committer:
    """Group commit: outcomes that finish while a commit runs go into the next one."""

    def __init__(self, store: Store, options: DeliveryOptions, clock: Clock) -> None:
        self.store, self.options, self.clock = store, options, clock
        self.pending: list[tuple[DeliveryResult, asyncio.Future[None]]] = []
        self.running = False

    async def record(self, result: DeliveryResult) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append((result, future))
        if not self.running:
            self.running = True
            asyncio.get_running_loop().create_task(self._flush())
        await future

    async def _flush(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending, []
                try:
                    await asyncio.to_thread(
                        self.store.finish,
                        self.options.worker,
                        [r for r, _ in batch],
                        self.clock(),
                        self.options.suppress_after,
                    )
                except BaseException as exc:  # handed to every waiting slot
                    for _, future in batch:
                        future.set_exception(exc)
                    continue
                for _, future in batch:
                    future.set_result(None)
        finally:
            self.running = False


async def deliver(
    store: Store,
    mailer: Mailer,
    compose: Compose,
    options: DeliveryOptions,
    *,
    clock: Clock,
    stop: asyncio.Event | None = None,
    rng: random.Random | None = None,
) -> DeliveryReport:
    """Deliver due messages until none is due (`once`) or until stopped."""
    stop = stop or asyncio.Event()
    rng = rng or random.Random()
    report = DeliveryReport()
    committer = _Committer(store, options, clock)
    failures_in_a_row = 0

    async def send(claimed: ClaimedMessage, outgoing: OutgoingMessage) -> DeliveryResult:
        nonlocal failures_in_a_row
        try:
            where = await mailer.send(outgoing)
        except PermanentSendError as exc:
            return DeliveryResult(claimed.id, "failed", str(exc), permanent=True)
        except TemporarySendError as exc:
            failures_in_a_row += 1
            if failures_in_a_row >= options.storm_limit and report.storm is None:
                report.storm = f"{failures_in_a_row} temporary failures in a row, last: {exc}"
            if claimed.attempts >= options.max_attempts:
                detail = f"gave up after {claimed.attempts} attempts: {exc}"
                return DeliveryResult(claimed.id, "failed", detail)
            delay = options.retry_delay * (2 ** (claimed.attempts - 1)) * rng.uniform(0.5, 1.5)
            next_at = clock() + min(delay, MAX_RETRY_DELAY)
            return DeliveryResult(claimed.id, "retry", str(exc), next_at)
        failures_in_a_row = 0
        return DeliveryResult(claimed.id, "sent", where)

    async with mailer:
        while not stop.is_set() and report.storm is None:
            batch = await asyncio.to_thread(
                store.claim, options.worker, clock(), options.batch_size, options.lease
            )
            if not batch:
                if options.once:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), options.poll_seconds)
                continue
            queue = deque(batch)

            async def slot(queue: deque[ClaimedMessage]) -> None:
                while queue and not stop.is_set() and report.storm is None:
                    claimed = queue.popleft()
                    try:
                        (outgoing,) = compose([claimed])
                    except DigestError as exc:  # e.g. a broken template: not the server's fault
                        result = DeliveryResult(claimed.id, "failed", f"cannot build: {exc}")
                    else:
                        result = await send(claimed, outgoing)
                    await committer.record(result)
                    report.results.append(
                        Delivered(
                            claimed.subscriber,
                            result.outcome,
                            result.detail,
                            result.next_attempt_at,
                        )
                    )
                    log.info(
                        "event=message_%s subscriber=%s attempt=%d detail=%s",
                        result.outcome,
                        claimed.subscriber,
                        claimed.attempts,
                        result.detail,
                    )

            await asyncio.gather(*(slot(queue) for _ in range(max(mailer.concurrency, 1))))
            if queue:
                await asyncio.to_thread(store.release_claims, options.worker, [c.id for c in queue])
    report.stopped = stop.is_set()
    if report.storm:
        log.warning("event=error_storm %s", report.storm)
    return report
