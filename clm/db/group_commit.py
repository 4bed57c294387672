"""Group commit: many requests' writes in one transaction, each request answered after that commit.

A request handler calls `await group.submit(item)`. When no flush is running, the item is flushed at once
(no timer, so an idle server adds no latency); while a flush runs, the items that arrive wait and the next
flush takes all of them (up to `max_batch`). So the busier the server, the more requests share one
transaction, one round trip per statement and one COMMIT, with no tuning.

`flush(items)` runs in a thread of the group commit's own (it blocks on the database; a thread kept per
event loop, handed each flush through a queue, costs a third less CPU per flush than the loop's executor
and its futures; it ends after `IDLE_SECONDS` without work) and returns one outcome per item, in order: a
value or an exception instance (that item's own refusal). The
future of each item is settled only when `flush` has returned, i.e. after its COMMIT: nothing is answered
before it is durable. If `flush` raises, every item of that flush gets the exception: exactly the requests
whose writes were rolled back fail, the ones of other flushes do not.

One flush at a time per event loop: a server process has one loop, so it has one flush in flight and at
most one database connection busy with it. The state is kept per loop because test clients may run an app
on several loops in turn.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
IDLE_SECONDS = 30.0


class _Lane:
    """The items waiting on one event loop, whether a flush of theirs is running, and the thread running it."""

    __slots__ = ("flushing", "jobs", "thread", "waiting")

    def __init__(self) -> None:
        self.waiting: list[tuple[Any, asyncio.Future]] = []
        self.flushing = False
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.thread: threading.Thread | None = None


class GroupCommit(Generic[T]):
    def __init__(self, flush: Callable[[list[T]], list[Any]], max_batch: int = 500):
        self.flush = flush
        self.max_batch = max_batch
        self._lanes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Lane] = weakref.WeakKeyDictionary()
        self._threads = threading.Lock()  # a lane's thread starting and ending

    async def submit(self, item: T) -> Any:
        """The item's outcome once its flush has committed; raises the item's (or the flush's) exception."""
        loop = asyncio.get_running_loop()
        lane = self._lanes.get(loop)
        if lane is None:
            lane = self._lanes[loop] = _Lane()
        future = loop.create_future()
        lane.waiting.append((item, future))
        if not lane.flushing:
            self._start(loop, lane)
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop, lane: _Lane) -> None:
        batch = lane.waiting[:self.max_batch]
        del lane.waiting[:self.max_batch]
        lane.flushing = True
        with self._threads:
            lane.jobs.put(batch)
            if lane.thread is None:
                lane.thread = threading.Thread(target=self._run, args=(loop, lane), name="clm-group-commit",
                                               daemon=True)
                lane.thread.start()

    def _run(self, loop: asyncio.AbstractEventLoop, lane: _Lane) -> None:
        """The lane's thread: flush each batch handed to it, then settle it on the loop."""
        while True:
            try:
                batch = lane.jobs.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._threads:
                    if lane.jobs.empty():
                        lane.thread = None
                        return
                continue
            try:
                outcomes, failure = self.flush([item for item, _ in batch]), None
                if len(outcomes) != len(batch):
                    raise RuntimeError(f"flush returned {len(outcomes)} outcomes for {len(batch)} items")
            except Exception as exc:  # every item of the flush fails with it
                outcomes, failure = None, exc
            try:
                loop.call_soon_threadsafe(self._settle, loop, lane, batch, outcomes, failure)
            except RuntimeError:  # the loop is closed: nobody waits any more
                with self._threads:
                    lane.thread = None
                return

    def _settle(self, loop: asyncio.AbstractEventLoop, lane: _Lane, batch: list, outcomes: list | None,
                failure: Exception | None) -> None:
        lane.flushing = False
        if lane.waiting:  # the next flush starts before this one's requests are answered
            self._start(loop, lane)
        for n, (_, future) in enumerate(batch):
            if future.done():  # the request was cancelled (its client left): the item was flushed anyway
                continue
            outcome = failure if failure is not None else outcomes[n]
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
