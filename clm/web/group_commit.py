"""Group commit: many requests' writes in one transaction, each request answered after that commit.

A request handler calls `await group.submit(item)`. When no flush is running, the item is flushed at once
(no timer, so an idle server adds no latency); while a flush runs, the items that arrive wait and the next
flush takes all of them (up to `max_batch`). So the busier the server, the more requests share one
transaction, one round trip per statement and one COMMIT, with no tuning.

`flush(items)` runs in a thread of the event loop's default executor (it blocks on the database) and
returns one outcome per item, in order: a value or an exception instance (that item's own refusal). The
future of each item is settled only when `flush` has returned, i.e. after its COMMIT: nothing is answered
before it is durable. If `flush` raises, every item of that flush gets the exception: exactly the requests
whose writes were rolled back fail, the ones of other flushes do not.

One flush at a time per event loop: a server process has one loop, so it has one flush in flight and at
most one database connection busy with it. The state is kept per loop because test clients may run an app
on several loops in turn.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class _Lane:
    """The items waiting on one event loop, and whether a flush of theirs is running."""

    __slots__ = ("flushing", "waiting")

    def __init__(self) -> None:
        self.waiting: list[tuple[Any, asyncio.Future]] = []
        self.flushing = False


class GroupCommit(Generic[T]):
    def __init__(self, flush: Callable[[list[T]], list[Any]], max_batch: int = 500):
        self.flush = flush
        self.max_batch = max_batch
        self._lanes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Lane] = weakref.WeakKeyDictionary()

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
        running = loop.run_in_executor(None, self.flush, [item for item, _ in batch])
        running.add_done_callback(lambda done: self._settle(loop, lane, batch, done))

    def _settle(self, loop: asyncio.AbstractEventLoop, lane: _Lane, batch: list, done: asyncio.Future) -> None:
        lane.flushing = False
        try:
            if lane.waiting:  # the next flush starts before this one's requests are answered
                self._start(loop, lane)
        finally:
            try:
                outcomes = done.result()
                if len(outcomes) != len(batch):
                    raise RuntimeError(f"flush returned {len(outcomes)} outcomes for {len(batch)} items")
            except asyncio.CancelledError:  # the loop is closing
                outcomes = [RuntimeError("the flush was cancelled")] * len(batch)
            except Exception as exc:  # every item of the flush fails with it
                outcomes = [exc] * len(batch)
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():  # the request was cancelled (its client left): the item was flushed anyway
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
