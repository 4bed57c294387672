"""Channels: a broadcast queued in bulk, then the outbox drained to a local SMTP server and a local SMS API.

1. **Queue a broadcast**: `enqueue_many` for 100,000 recipients (`--quick` 20,000) of a three-part email
   template (subject, text, HTML with two tracked links) rendered per customer, every recipient with
   marketing consent: seconds to have every message row, its history row and its send job committed
   (the issue's target: 100,000 in under 30 s), on PostgreSQL and SQLite.
2. **Drain the outbox**: worker processes run the `channels.send` jobs (guardrails re-checked, the
   message claimed, handed to the provider, the outcome recorded) against
   - a local SMTP server (aiosmtpd, in this process) for email, and
   - a local HTTP server speaking eSMS's SendMultipleMessage_V4 API for SMS,
   messages per second with one worker running one job at a time (`per-job`) and in batches
   (`batch`: send_many, as `clm worker` runs), and with two worker processes in batches on PostgreSQL
   (the scaling ratio; the issue asks for at least 1.7x). One worker on SQLite. CPU seconds are measured per worker
   process and per PostgreSQL backend serving it (/proc), with the machine's load average: the machine
   is shared, and a ratio between runs means little without them.

PostgreSQL: CLM_BENCH_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/clm_bench_channels,
created when missing). python bench/channels_bench.py [--quick] [--part broadcast|enqueue|drain]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

PG_URL = os.environ.get("CLM_BENCH_POSTGRES_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/clm_bench_channels")
ESMS_PATH = "/MainService.svc/json/SendMultipleMessage_V4_post_json/"

EMAIL = {
    "vi": {"subject": "{{ customer.given_name }} ơi, ưu đãi tháng này",
           "text": "Xin chào {{ customer.name }}!\nGiảm 20% cho đơn từ {{ 500000|vnd }}: https://shop.example.vn/sale\n"
                   "Huỷ nhận tin: {{ unsubscribe_url }}",
           "html": "<p>Xin chào <b>{{ customer.name }}</b>,</p><p>Giảm 20% cho đơn từ {{ 500000|vnd }}.</p>"
                   "<p><a href=\"https://shop.example.vn/sale?utm_source=email\">Mua ngay</a> · "
                   "<a href=\"https://shop.example.vn/stores\">Cửa hàng</a></p>"
                   "<p><a href=\"{{ unsubscribe_url }}\">Huỷ nhận tin</a></p>"},
    "en": {"subject": "{{ customer.given_name }}, this month's offer",
           "text": "Hello {{ customer.name }}!\n20% off orders over {{ 500000|vnd }}: https://shop.example.vn/sale",
           "html": "<p>Hello <b>{{ customer.name }}</b>, 20% off: <a href=\"https://shop.example.vn/sale\">shop</a></p>"},
}
SMS = {"vi": {"text": "SHOP AN: {{ customer.given_name }} oi, giam 20% cho don tu 500k den het thang."}}


def settings_for(url: str, smtp_url: str | None = None, esms_url: str | None = None):
    from clm.config import Settings

    extra = {}
    if esms_url:
        extra = {"esms_api_key": "bench-key", "esms_secret_key": "bench-secret", "esms_brandname": "SHOPAN",
                 "esms_url": esms_url, "esms_callback_url": "https://shop.example.vn/hooks/esms/x"}
    return Settings(_env_file=None, database_url=url, smtp_url=smtp_url, email_from="Cửa hàng An <shop@example.vn>",
                    public_url="https://shop.example.vn", tracking_secret="bench-secret", quiet_hours="",
                    marketing_cap=0, **extra)


def seed(url: str, customers: int) -> sa.Engine:
    """A fresh database with `customers` customers (email, phone, consent for email and SMS marketing)
    and the two templates."""
    from jobs_bench import _fresh

    from clm.channels.templates import create_template
    from clm.customers.models import Consent, Customer
    from clm.db.bulk import insert_rows
    from clm.db.engine import for_writing, make_session_factory

    engine = _fresh(url)
    factory = make_session_factory(engine)
    now = datetime.now(UTC)
    given = ["An", "Bình", "Chi", "Dũng", "Hà", "Lan", "Minh", "Nam", "Phương", "Quân"]
    with factory() as session:
        for_writing(session)
        for first in range(1, customers + 1, 50_000):
            ids = range(first, min(customers, first + 49_999) + 1)
            insert_rows(session, Customer.__table__,
                        ("id", "email", "phone", "full_name", "given_name", "traits", "search_text", "created_at",
                         "updated_at"),
                        [(i, f"khach{i}@example.vn", f"+8491{i:07d}", f"Nguyễn {given[i % 10]}", given[i % 10],
                          {"locale": "en"} if i % 5 == 0 else {}, "", now, now) for i in ids])
            insert_rows(session, Consent.__table__,
                        ("customer_id", "channel", "purpose", "granted", "source", "recorded_at"),
                        [(i, ch, "marketing", True, "bench", now) for i in ids for ch in ("email", "sms")])
        if url.startswith("postgresql"):
            session.execute(sa.text("SELECT setval(pg_get_serial_sequence('customers', 'id'), :n)"), {"n": customers})
        create_template(session, key="offer", channel="email", variants=EMAIL)
        create_template(session, key="offer-sms", channel="sms", variants=SMS)
        session.commit()
    if url.startswith("postgresql"):
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    return engine


def share_priority(backend: int | None) -> int | None:
    """Give the PostgreSQL backend serving this benchmark this process's priority when that is higher than
    the backend's (a benchmark run at `nice -n -20` on a shared machine: the backend's work is the
    benchmark's too). Returns the backend's niceness after, or None when unchanged or not allowed."""
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    if backend is None or mine >= 0:
        return None
    try:
        os.setpriority(os.PRIO_PROCESS, backend, mine)
    except OSError:
        return None
    return mine


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def enqueue(engine: sa.Engine, url: str, customers: int, template: str = "offer", channel: str = "email",
            prefix: str = "broadcast:1", render_processes: int | None = None) -> dict:
    """Queue the template for customers 1..N with enqueue_many, in one transaction: seconds, counts and
    CPU seconds: this process's (`cpu`), its render processes' (`render_cpu`, reaped when the call
    returns) and its PostgreSQL backend's (`backend_cpu`). `render_processes`: CLM_RENDER_PROCESSES."""
    from clm.channels.service import enqueue_many
    from clm.db.engine import for_writing, make_session_factory

    factory = make_session_factory(engine)
    settings = settings_for(url).model_copy(update={"render_processes": render_processes})
    with factory() as session:
        for_writing(session)
        backend = (session.execute(sa.text("SELECT pg_backend_pid()")).scalar()
                   if url.startswith("postgresql") else None)
        backend_cpu = _cpu_of(backend) if backend else 0.0
        backend_nice = share_priority(backend)
        started = time.perf_counter()
        cpu, children = time.process_time(), _children_cpu()
        counts = enqueue_many(session, customer_ids=list(range(1, customers + 1)), channel=channel,
                              template_key=template, idempotency_prefix=prefix, settings=settings)
        session.commit()
        out = {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu,
               "render_cpu": _children_cpu() - children, "counts": counts, "backend_nice": backend_nice}
        if backend:
            out["backend_cpu"] = _cpu_of(backend) - backend_cpu
    return out


def seed_segment(engine: sa.Engine, url: str, customers: int) -> int:
    """A static segment whose members are customers 1..N (written in bulk): its id."""
    from clm.db.bulk import insert_rows
    from clm.db.engine import for_writing, make_session_factory
    from clm.segments.models import Segment, SegmentMember

    now = datetime.now(UTC)
    with make_session_factory(engine)() as session:
        for_writing(session)
        segment = Segment(name="bench", kind="static", description="", depends_on=[], size=customers,
                          refreshed_at=now, created_at=now, updated_at=now)
        session.add(segment)
        session.flush()
        for first in range(1, customers + 1, 50_000):
            insert_rows(session, SegmentMember.__table__, ("segment_id", "customer_id", "entered_at"),
                        [(segment.id, i, now) for i in range(first, min(customers, first + 49_999) + 1)])
        session.commit()
        segment_id = segment.id
    if url.startswith("postgresql"):
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE segment_members")
    return segment_id


def broadcast(engine: sa.Engine, url: str, segment_id: int, render_processes: int | None = None) -> dict:
    """A broadcast of the email template to the segment, scheduled now, and its `broadcasts.send` job run
    by the worker's job step (`run_due`): seconds from the job's claim to every recipient's message, history
    row and send job committed (the job returns when the last chunk is committed), with CPU seconds as
    `enqueue` gives them."""
    from clm.channels import broadcasts as b
    from clm.channels.models import Broadcast
    from clm.db.engine import for_writing, make_engine, make_session_factory
    from clm.jobs.registry import build_registry
    from clm.jobs.runner import run_due

    settings = settings_for(url).model_copy(update={"render_processes": render_processes})
    postgres = url.startswith("postgresql")
    worker_engine = make_engine(url, pool_size=1, max_overflow=0) if postgres else make_engine(url)
    factory = make_session_factory(worker_engine)
    with factory() as session:
        for_writing(session)
        draft = b.create_broadcast(session, name="bench", template_key="offer", segment_id=segment_id,
                                   settings=settings)
        b.schedule(session, draft.id)
        session.commit()
        broadcast_id = draft.id
        backend = session.execute(sa.text("SELECT pg_backend_pid()")).scalar() if postgres else None
    registry = build_registry(settings)
    backend_cpu = _cpu_of(backend) if backend else 0.0
    backend_nice = share_priority(backend)
    started = time.perf_counter()
    cpu, children = time.process_time(), _children_cpu()
    ran = run_due(factory, registry, "bench", limit=1)
    out = {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu,
           "render_cpu": _children_cpu() - children, "jobs": ran, "backend_nice": backend_nice}
    if backend:
        out["backend_cpu"] = _cpu_of(backend) - backend_cpu
    with factory() as session:
        done = session.get(Broadcast, broadcast_id)
        out["recipients"], out["queued"] = done.recipients, done.queued_at is not None
    worker_engine.dispose()
    return out


# --- local providers --------------------------------------------------------------------------------


class CountingSink:
    """aiosmtpd handler: accepts everything and counts it."""

    def __init__(self):
        self.received = 0

    async def handle_DATA(self, server, session, envelope):
        self.received += 1
        return "250 Message accepted"


def start_smtp():
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = CountingSink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, sink, f"smtp://127.0.0.1:{port}"


class _EsmsHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real API allows
    # Headers and body leave in two writes; with Nagle's algorithm on, the body waited for the client's
    # delayed ACK of the headers: 40-45 ms per request, most of what the SMS figures measured until then.
    disable_nagle_algorithm = True
    count = 0
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        ok = self.path == ESMS_PATH and body.get("ApiKey") == "bench-key" and body.get("Phone", "").startswith("0")
        with _EsmsHandler.lock:
            _EsmsHandler.count += 1
            n = _EsmsHandler.count
        answer = json.dumps({"CodeResult": "100", "SMSID": f"sms-{n}"} if ok else
                            {"CodeResult": "99", "ErrorMessage": "bad request"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def start_esms():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EsmsHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


# --- draining ---------------------------------------------------------------------------------------


def _cpu_of(pid: int) -> float:
    from queue_drain import cpu_of

    return cpu_of(pid)


def drain(url: str, count: int, name: str, smtp_url: str, esms_url: str, mode: str = "batch") -> dict:
    """Run up to `count` send jobs as worker `name` (also the subprocess entry point). `batch`: the
    worker's registry (a claimed batch through send_many); `per-job`: each job on its own."""
    from queue_drain import drain_jobs

    from clm.channels.sending import send_handler
    from clm.jobs.registry import build_registry
    from clm.jobs.runner import Registry

    settings = settings_for(url, smtp_url, esms_url)
    if mode == "batch":
        registry = build_registry(settings)
    else:
        registry = Registry()
        registry.register("channels.send", send_handler(settings))
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    return drain_jobs(url, registry, name, count, pool_size=2, backend_nice=mine if mine < 0 else None)


def _workers(url: str, count: int, n: int, smtp_url: str, esms_url: str, mode: str = "batch") -> dict:
    """`n` worker processes draining `count` jobs between them; `server_cpu` is this process's CPU meanwhile
    (the local SMTP and eSMS servers)."""
    server_cpu = time.process_time()
    procs = [subprocess.Popen([sys.executable, __file__, "--drain", url, str(count // n), f"bench-{i}", smtp_url,
                               esms_url, mode], cwd=ROOT, stdout=subprocess.PIPE, text=True) for i in range(n)]
    results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    return {"jobs": sum(r["jobs"] for r in results), "seconds": max(r["seconds"] for r in results),
            "worker_cpu": sum(r["worker_cpu"] for r in results),
            "backend_cpu": sum(r.get("backend_cpu", 0.0) for r in results),
            "server_cpu": time.process_time() - server_cpu}


def _row(database: str, what: str, result: dict) -> dict:
    row = {"database": database, "what": what, "seconds": round(result["seconds"], 2), "messages": result["jobs"],
           "per_second": result["jobs"] / result["seconds"] if result["seconds"] else 0.0,
           "worker_cpu_s": round(result["worker_cpu"], 2), "server_cpu_s": round(result["server_cpu"], 2),
           "nice": os.getpriority(os.PRIO_PROCESS, 0), "load_1min": os.getloadavg()[0]}
    if result.get("backend_cpu"):
        row["postgres_backend_cpu_s"] = round(result["backend_cpu"], 2)
    return row


def run(quick: bool = False, parts: tuple[str, ...] = ("broadcast", "enqueue", "drain"),
        render_processes: tuple[int | None, ...] = (0, None), only: str | None = None,
        repeat: int = 1) -> list[dict]:
    recipients = 20_000 if quick else 100_000
    drained = 1_000 if quick else 4_000
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    databases = (("postgresql", PG_URL), ("sqlite", f"sqlite:///{OUT}/channels_bench.db"))
    for database, url in databases:
        if only and database != only:
            continue
        for processes in render_processes if "broadcast" in parts else ():
            engine = seed(url, recipients)
            segment_id = seed_segment(engine, url, recipients)
            result = broadcast(engine, url, segment_id, render_processes=processes)
            how = "in process" if processes == 0 else f"{processes or 'auto'} render processes"
            assert result["queued"] and result["recipients"] == recipients, result
            rows.append({"database": database, "what": f"broadcast job, {recipients:,} members, {how}",
                         "seconds": round(result["seconds"], 2), "messages": result["recipients"],
                         "per_second": recipients / result["seconds"], "worker_cpu_s": round(result["cpu"], 2),
                         "render_cpu_s": round(result["render_cpu"], 2),
                         "postgres_backend_cpu_s": round(result.get("backend_cpu", 0.0), 2) or None,
                         "backend_nice": result.get("backend_nice"), "nice": os.getpriority(os.PRIO_PROCESS, 0),
                         "load_1min": os.getloadavg()[0]})
            engine.dispose()
        for processes in render_processes if "enqueue" in parts else ():
            engine = seed(url, recipients)
            result = enqueue(engine, url, recipients, render_processes=processes)
            how = "in process" if processes == 0 else f"{processes or 'auto'} render processes"
            rows.append({"database": database, "what": f"enqueue_many {recipients:,} emails, {how}",
                         "seconds": round(result["seconds"], 2), "messages": recipients,
                         "per_second": recipients / result["seconds"], "worker_cpu_s": round(result["cpu"], 2),
                         "render_cpu_s": round(result["render_cpu"], 2),
                         "postgres_backend_cpu_s": round(result.get("backend_cpu", 0.0), 2) or None,
                         "backend_nice": result.get("backend_nice"), "nice": os.getpriority(os.PRIO_PROCESS, 0),
                         "load_1min": os.getloadavg()[0]})
            engine.dispose()
        if "drain" in parts:
            rows.extend(_drain_rows(database, url, drained, repeat))
    return rows


def _drain_rows(database: str, url: str, drained: int, repeat: int = 1) -> list[dict]:
    """Per channel, a fresh database with enough messages queued, drained by one worker one job at a time,
    then `repeat` times one worker in batches and (PostgreSQL) two worker processes in batches, alternately
    (a ratio from neighbouring runs: the load of a shared machine drifts). Each worker runs in its own
    process (the SMTP and HTTP servers run in this one)."""
    controller, sink, smtp_url = start_smtp()
    server, esms_url = start_esms()
    rows = []
    runs = 1 + repeat * (2 if database == "postgresql" else 1)
    try:
        for channel, template in (("email", "offer"), ("sms", "offer-sms")):
            engine = seed(url, runs * drained)
            enqueue(engine, url, runs * drained, template=template, channel=channel)
            engine.dispose()
            per_job = _workers(url, drained, 1, smtp_url, esms_url, "per-job")
            rows.append(_row(database, f"{channel}: 1 worker, per-job", per_job))
            for _ in range(repeat):
                one = _workers(url, drained, 1, smtp_url, esms_url, "batch")
                rows.append(_row(database, f"{channel}: 1 worker, batch", one))
                if database == "postgresql":
                    two = _workers(url, drained, 2, smtp_url, esms_url, "batch")
                    rows.append({**_row(database, f"{channel}: 2 worker processes, batch", two),
                                 "scaling": (two["jobs"] / two["seconds"]) / (one["jobs"] / one["seconds"])})
    finally:
        controller.stop()
        server.shutdown()
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--part", choices=("broadcast", "enqueue", "drain"), action="append")
    parser.add_argument("--render-processes", type=int, action="append",
                        help="CLM_RENDER_PROCESSES for the broadcast and enqueue parts (repeatable; default: 0, then auto)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="drain: how many times the 1-worker and 2-worker batch runs alternate")
    parser.add_argument("--database", choices=("postgresql", "sqlite"), help="only this database")
    parser.add_argument("--drain", nargs=6, metavar=("URL", "COUNT", "NAME", "SMTP", "ESMS", "MODE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drain:
        url, count, name, smtp_url, esms_url, mode = args.drain
        print(json.dumps(drain(url, int(count), name, smtp_url, esms_url, mode)))
    else:
        for row in run(quick=args.quick, parts=tuple(args.part or ("broadcast", "enqueue", "drain")),
                       render_processes=tuple(args.render_processes or (0, None)), only=args.database,
                       repeat=args.repeat):
            print(row)
