"""Rendering a message's content, and rendering many in worker processes for a large broadcast.

Rendering (Jinja in the sandbox, the tracked links and their HMACs) is most of the CPU a broadcast
costs to queue, about 60 µs of the 110 µs per recipient, and it needs no database: the customer's
variables are read first. So `enqueue_many` hands each chunk's rendering to a :class:`RenderPool`
(processes started with *spawn*: nothing of the parent's database connections is inherited) and,
while they render, reads the next chunks and writes the rendered ones. A small call renders in
process (:class:`InlineRenderer`): starting processes costs more than it saves below a few thousand
recipients.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from clm.channels.templates import Rendered, RenderError, TemplateVersion, render_version
from clm.channels.tracking import Links

# Below this many recipients a call renders in process.
POOL_THRESHOLD = 10_000


def links_used(version) -> tuple[bool, bool]:
    """Whether any part of `version` names `unsubscribe_url` / `preferences_url` (each costs an HMAC per
    message; a name absent from every source cannot be referenced)."""
    sources = [part for variant in (version.variants or {}).values() for part in variant.values() if part]
    sources += list((version.provider or {}).get("template_data", {}).values())
    return (any("unsubscribe_url" in s for s in sources), any("preferences_url" in s for s in sources))


def render_for(message_id: int, channel: str, purpose: str, version, variables: dict[str, Any], locale: str,
               settings, key: bytes | None = None, used: tuple[bool, bool] = (True, True)) -> Rendered:
    """The message's content: the template rendered with its unsubscribe/preference links, and for
    email its links through the click redirect and the open pixel. RenderError says why not."""
    links = Links(settings, message_id, key)
    variables = dict(variables)
    if used[0]:
        variables["unsubscribe_url"] = links.unsubscribe()
    if used[1]:
        variables["preferences_url"] = links.preferences()
    rendered = render_version(version, channel, locale, variables)
    if channel == "email" and rendered.html:
        rendered.html = links.track_html(rendered.html)
    return rendered


@dataclass(frozen=True)
class Batch:
    """What rendering one chunk needs, all of it picklable: the template version's content, the channel
    and purpose, the public URL and tracking key, and per recipient (message id, variables, locale)."""

    version: int
    variants: dict[str, Any]
    provider: dict[str, Any]
    channel: str
    purpose: str
    public_url: str
    key: bytes
    used: tuple[bool, bool]
    recipients: Sequence[tuple[int, dict[str, Any], str]]


def render_batch(batch: Batch) -> list[Rendered | str]:
    """Each recipient's content, or the reason it does not render (RenderError's), in order."""
    version = TemplateVersion(version=batch.version, variants=batch.variants, provider=batch.provider)
    settings = SimpleNamespace(public_url=batch.public_url)
    out: list[Rendered | str] = []
    for message_id, variables, locale in batch.recipients:
        try:
            out.append(render_for(message_id, batch.channel, batch.purpose, version, variables, locale, settings,
                                  batch.key, batch.used))
        except RenderError as exc:
            out.append(exc.reason)
    return out


class InlineRenderer:
    """Renders in this process, at once (the future is already done)."""

    workers = 1

    def submit(self, batch: Batch) -> Future:
        future: Future = Future()
        try:
            future.set_result(render_batch(batch))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits, as a pool would
            future.set_exception(exc)
        return future

    def close(self) -> None:
        pass


class RenderPool:
    """Renders batches in `workers` processes (spawned, so they share no connection with this one)."""

    def __init__(self, workers: int):
        self.workers = workers
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, batch: Batch) -> Future:
        return self._pool.submit(render_batch, batch)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def renderer_for(recipients: int, processes: int | None = None, threshold: int | None = None):
    """A RenderPool for a large call on a machine with cores to spare, else an InlineRenderer.
    `processes`: 0 renders in process always; None takes the CPU count (at most 4). Even one process
    helps: it renders while this one reads and writes."""
    if processes is None:
        processes = min(4, os.cpu_count() or 1)
    if processes < 1 or recipients < (POOL_THRESHOLD if threshold is None else threshold):
        return InlineRenderer()
    return RenderPool(processes)
