"""The service desk's inbound burst (issue 10; run through bench/service_bench.py --only burst): messages
offered at a target rate to the desk's inbound API (`--via api`, POST /api/v1/service/messages) or to the
Zalo OA webhook (`--via zalo`, signed `user_send_text` events) on a real `clm serve` with `clm worker`
processes beside it, 5% of them resent; then all stored, none twice, and the time until each shows in an
open agent view."""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
from loyalty_bench import _server
from service_bench import NOW, PG_URL, ROOT, _backends_cpu, _copy, _customers, _fresh_db, _pct, _staff
from tracking_bench import _free_port

# --- the burst --------------------------------------------------------------------------------------------------


def _tree_cpu(root: int) -> float:
    """CPU seconds of a process and all its descendants (the `clm serve` master and its server processes)."""
    from queue_drain import cpu_of

    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu_of(pid)
        todo += children.get(pid, [])
    return total


async def _post_at_rate(port: int, path: str, headers: dict[str, str], bodies: list[bytes], rate: int,
                        connections: int, acks: dict[int, float], statuses: dict, latencies: list[float],
                        own_headers: list[bytes] | None = None) -> None:
    """Open-loop load: request i (a POST of bodies[i] to `path` with `headers`, and own_headers[i] when given:
    header lines of that request alone, such as a signature) is due at start + i/rate, sent on one of
    `connections` keep-alive HTTP/1.1 connections (a small hand-written client, so the load generator's own
    CPU stays small next to the server's). `acks[i]`: when the 2xx answer to request i arrived."""
    import asyncio

    start = time.perf_counter()
    counter = iter(range(len(bodies)))
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + "Content-Type: application/json\r\n").encode()

    async def connection() -> None:
        reader = writer = None
        for i in counter:
            wait = start + i / rate - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            t0 = time.perf_counter()
            for _attempt in range(5):  # a provider resends when the connection drops
                try:
                    if writer is None:
                        reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.write(head + (own_headers[i] if own_headers else b"") + b"Content-Length: "
                                 + str(len(bodies[i])).encode() + b"\r\n\r\n" + bodies[i])
                    status_line = await reader.readuntil(b"\r\n")
                    length = 0
                    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    await reader.readexactly(length)
                    status = int(status_line.split()[1])
                    if status < 500:
                        break
                    statuses[f"{status} (resent)"] = statuses.get(f"{status} (resent)", 0) + 1
                except (OSError, asyncio.IncompleteReadError):
                    writer, status = None, -1
                await asyncio.sleep(0.5)
            now = time.perf_counter()
            statuses[status] = statuses.get(status, 0) + 1
            latencies.append((now - t0) * 1000)
            if 200 <= status < 300:
                acks[i] = now
        if writer is not None:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))


def _watch_views(url: str, stop: threading.Event, seen: dict[str, float], every: float = 0.1) -> None:
    """Poll what the open agent views show (open tickets: the unassigned queue and each agent's mine) for
    new customer messages; `seen[external_id]`: when a message was first there."""
    import sqlalchemy as sa

    # PostgreSQL: not prepared (a generic plan made while the tables were nearly empty scans them whole)
    engine = (sa.create_engine(url, poolclass=sa.NullPool) if url.startswith("sqlite")
              else sa.create_engine(url, connect_args={"prepare_threshold": None}))
    # The newest messages first, then their tickets: the tables grow from empty during the burst, and with
    # statistics that lag behind, PostgreSQL otherwise walks every open ticket at every poll.
    query = sa.text("WITH recent AS MATERIALIZED (SELECT id, external_id, ticket_id FROM service_messages "
                    "WHERE id > :floor AND direction = 'in') "
                    "SELECT m.id, m.external_id FROM recent m JOIN service_tickets t ON t.id = m.ticket_id "
                    "WHERE t.merged_into_id IS NULL AND t.status IN ('new', 'open', 'pending_customer', 'on_hold')")
    top, polls = 0, 0
    with engine.connect() as c:
        if not url.startswith("sqlite"):  # the statistics of tables filled seconds ago say they are empty
            c.execute(sa.text("SET enable_seqscan = off"))
        while not stop.is_set():
            # ids may commit out of order (the one-by-one path, mail, chat): look back a little at every poll
            # and far every 2 s (looking back 2,000 rows at every poll cost PostgreSQL more than filing did)
            polls += 1
            back = 5_000 if polls % 20 == 0 else 300
            rows = c.execute(query, {"floor": max(top - back, 0)}).all()
            c.rollback()
            now = time.perf_counter()
            for mid, ext in rows:
                top = max(top, mid)
                if ext not in seen:
                    seen[ext] = now
            stop.wait(every)
    engine.dispose()


def _api_plan(total: int, customers: int, inbox_id: int) -> tuple[list[bytes], list[str]]:
    """The API burst's request bodies (5% sent twice) and the desk message external_id of each."""
    rng = random.Random(14)
    plan: list[bytes] = []
    ids: list[str] = []
    for i in range(total):
        body = orjson.dumps({"inbox_id": inbox_id, "customer_id": rng.randint(1, customers), "body": f"Tin nhắn {i}",
                             "external_id": f"zalo-msg-{i}"})
        plan.append(body)
        ids.append(f"zalo-msg-{i}")
        if rng.random() < 0.05:
            plan.append(body)  # the provider delivers it again
            ids.append(f"zalo-msg-{i}")
    return plan, ids


ZALO_APP_ID, ZALO_OA_SECRET = "bench-app", "bench-oa-secret"
ZALO_ENV = {"CLM_ZALO_APP_ID": ZALO_APP_ID, "CLM_ZALO_OA_SECRET_KEY": ZALO_OA_SECRET}


def _zalo_sender(customer_id: int) -> str:
    return f"ZU{customer_id:012d}"


def _zalo_identities(session, customers: int, backend: str) -> None:
    """Customer i is Zalo user `_zalo_sender(i)` (a `zalo` identity), as for a shop whose customers already
    wrote before: the worker finds them by identity, as the API burst names existing customers."""
    import sqlalchemy as sa

    from clm.customers.models import Identity

    rows = ((i, "zalo", _zalo_sender(i), False, NOW) for i in range(1, customers + 1))
    if backend == "postgres":
        _copy(session, "identities", ["customer_id", "kind", "value", "verified", "created_at"], rows)
    else:
        session.execute(sa.insert(Identity), [dict(zip(("customer_id", "kind", "value", "verified", "created_at"),
                                                       r, strict=True)) for r in rows])


def _zalo_plan(total: int, customers: int) -> tuple[list[bytes], list[str], list[bytes]]:
    """The same burst as Zalo OA `user_send_text` events (the same customers, in the same order, as
    `_api_plan`), each with its X-ZEvent-Signature (sha256 of app_id + body + timestamp + OA secret key);
    a resend is the same request again. The desk message's external_id is the reply's "zalo:<msg_id>"."""
    import hashlib

    rng = random.Random(14)
    plan: list[bytes] = []
    ids: list[str] = []
    signatures: list[bytes] = []
    base_ms = int(time.time() * 1000)
    for i in range(total):
        timestamp = str(base_ms + i)
        msg_id = f"bench{i:015d}"
        body = orjson.dumps({"event_name": "user_send_text", "app_id": ZALO_APP_ID,
                             "sender": {"id": _zalo_sender(rng.randint(1, customers))}, "recipient": {"id": "OA-bench"},
                             "message": {"text": f"Tin nhắn {i}", "msg_id": msg_id}, "timestamp": timestamp})
        mac = hashlib.sha256(ZALO_APP_ID.encode() + body + timestamp.encode() + ZALO_OA_SECRET.encode()).hexdigest()
        header = f"X-ZEvent-Signature: mac={mac}\r\n".encode()
        copies = 2 if rng.random() < 0.05 else 1  # the provider delivers it again
        plan += [body] * copies
        ids += [f"zalo:{msg_id}"] * copies
        signatures += [header] * copies
    return plan, ids, signatures


def burst(quick: bool, rate: int = 1000, seconds: int = 60, customers: int = 20_000, connections: int = 24,
          backend: str = "postgres", servers: int = 2, drain: float = 240, workers: int = 1,
          via: str = "api") -> list[dict]:
    """The inbound burst: `rate` messages/s for `seconds` through POST /api/v1/service/messages (`via` "api") or
    the Zalo OA webhook (`via` "zalo": signed `user_send_text` events from the customers' Zalo user ids) on
    `clm serve --workers servers` with `clm worker` beside it; 5% of the messages resent. After the last request,
    up to `drain` seconds for the worker to file everything."""
    import asyncio

    import sqlalchemy as sa

    from clm.access.keys import create_api_key
    from clm.service.conversations import InboxIn, save_inbox

    if quick:
        rate, seconds, customers = 200, 10, min(customers, 2000)
    if backend == "postgres":
        url = PG_URL
        engine, factory = _fresh_db()
    else:
        from clm.db.engine import make_engine, make_session_factory
        from clm.db.migrate import upgrade

        path = Path(os.environ.get("TMPDIR", "/tmp")) / "b1_service_burst.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
        engine = make_engine(url)
        upgrade(engine)
        factory = make_session_factory(engine)
    with factory() as s:
        from clm.access.models import User
        from clm.customers.models import Customer
        from clm.service.agents import AgentIn, save_agent

        if backend == "postgres":
            _staff(s, 50, capacity=100_000)
            _customers(s, customers)
        else:
            for i in range(1, 51):
                s.add(User(id=i, email=f"agent{i}@desk.vn", name=f"Agent {i}", password_hash="x", role="agent",
                           active=True, created_at=NOW))
            s.flush()
            for i in range(1, 51):
                save_agent(s, i, AgentIn(availability="online", capacity=1000))
            s.execute(sa.text("UPDATE service_agents SET capacity = 100000"))  # as the PostgreSQL setup
            s.execute(sa.insert(Customer), [{"id": i, "traits": {}, "search_text": "", "created_at": NOW,
                                             "updated_at": NOW} for i in range(1, customers + 1)])
        if via == "zalo":
            _zalo_identities(s, customers, backend)
        # the active inbox on channel zalo: the webhook's replies become desk messages there
        inbox = save_inbox(s, InboxIn(name="Zalo OA", channel="zalo", language="vi"))
        _, key = create_api_key(s, "bench", ["service:write"])
        s.commit()
        inbox_id = inbox.id
    if via == "zalo":
        path, headers = "/hooks/zalo", {}
        plan, ids, own_headers = _zalo_plan(rate * seconds, customers)
    else:
        path, headers, own_headers = "/api/v1/service/messages", {"Authorization": f"Bearer {key}"}, None
        plan, ids = _api_plan(rate * seconds, customers, inbox_id)
    total = rate * seconds
    port = _free_port()
    saved_env = {k: os.environ.get(k) for k in ZALO_ENV}
    if via == "zalo":
        os.environ.update(ZALO_ENV)  # `clm serve` reads its settings from the environment
    try:
        server = _server(url, port, workers=servers, with_worker=False)
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    env = {**os.environ, "CLM_DATABASE_URL": url, "CLM_LOG_LEVEL": "warning", "PYTHONPATH": str(ROOT),
           "CLM_WORKER_POLL_SECONDS": "0.05"}
    worker_procs = [subprocess.Popen([sys.executable, "-m", "clm.cli", "worker"], env=env) for _ in range(workers)]

    def workers_cpu() -> float:
        return sum(_tree_cpu(p.pid) for p in worker_procs)

    acks: dict[int, float] = {}
    statuses: dict = {}
    latencies: list[float] = []
    seen: dict[str, float] = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_views, args=(url, stop, seen), daemon=True)
    time.sleep(2)  # the worker has started
    load_before = os.getloadavg()
    cpu = {"server": _tree_cpu(server.pid), "worker": workers_cpu(), "bench": time.process_time(),
           "postgres": _backends_cpu(engine) if backend == "postgres" else 0.0}
    try:
        watcher.start()
        start = time.perf_counter()
        asyncio.run(_post_at_rate(port, path, headers, plan, int(rate * len(plan) / total), connections, acks,
                                  statuses, latencies, own_headers))
        sent_s = time.perf_counter() - start
        cpu_sent = {"server": _tree_cpu(server.pid) - cpu["server"], "worker": workers_cpu() - cpu["worker"]}
        deadline = time.perf_counter() + drain
        unique = set(ids)
        while len(seen) < len(unique) and time.perf_counter() < deadline:
            time.sleep(0.2)
        filed_s = time.perf_counter() - start
        load_after = os.getloadavg()
        cpu = {"server": _tree_cpu(server.pid) - cpu["server"], "worker": workers_cpu() - cpu["worker"],
               "bench": time.process_time() - cpu["bench"],
               "postgres": (_backends_cpu(engine) - cpu["postgres"]) if backend == "postgres" else 0.0}
    finally:
        stop.set()
        for proc in (server, *worker_procs):
            proc.terminate()
            proc.wait(timeout=60)
    first_ack: dict[str, float] = {}
    for i, at in acks.items():
        first_ack[ids[i]] = min(at, first_ack.get(ids[i], at))
    visible = [(seen[e] - at) * 1000 for e, at in first_ack.items() if e in seen]
    with factory() as s:
        stored = s.scalar(sa.text("SELECT count(*) FROM service_inbound"))
        messages = s.scalar(sa.text("SELECT count(*) FROM service_messages WHERE direction = 'in'"))
        distinct = s.scalar(sa.text("SELECT count(DISTINCT external_id) FROM service_messages WHERE direction = 'in'"))
        opened = s.scalar(sa.text("SELECT count(*) FROM service_tickets"))
        failed = s.scalar(sa.text("SELECT count(*) FROM service_inbound WHERE error IS NOT NULL"))
    engine.dispose()
    what = ("POST /hooks/zalo, signed user_send_text" if via == "zalo" else "POST /service/messages")
    return [{"bench": f"inbound burst ({what}, stored then filed by the worker)", "via": via, "backend": backend,
             "server processes": servers, "worker processes": workers, "customers": customers, "offered per s": rate, "seconds": seconds,
             "sent": len(plan), "unique": len(set(ids)), "acknowledged per s": round(len(acks) / sent_s),
             "ack p50 ms": round(statistics.median(latencies), 1), "ack p99 ms": round(_pct(latencies, 99), 1),
             "answers": ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=str)),
             "stored": stored, "filed messages": messages, "filed twice": messages - distinct, "failed": failed,
             "tickets opened": opened, "filed or gave up after s": round(filed_s, 1),
             "filed per s (worker)": round(messages / filed_s),
             "ack to visible p50 ms": round(statistics.median(visible), 1) if visible else None,
             "ack to visible p99 ms": round(_pct(visible, 99), 1) if visible else None,
             "not visible": len(first_ack) - len(visible),
             "cpu s while sending (server, worker)": (round(cpu_sent["server"], 1), round(cpu_sent["worker"], 1)),
             "cpu s total (server, worker, postgres, bench)": tuple(round(cpu[k], 1) for k in
                                                                  ("server", "worker", "postgres", "bench")),
             "load before/after": (round(load_before[0], 1), round(load_after[0], 1))}]
