"""Test sends: a template (rendered for a chosen customer) or a short check message, sent to a staff
address through the channel's real provider, by the worker.

A test send is not a message to a customer: it has no row in `messages`, skips the guardrails and is
never counted by the frequency cap or a report. The content is rendered when it is asked for, so a
template that does not render is refused at once with the reason; the sending itself is a
`channels.test` job (one attempt: a staff member wants to know now, not after eight retries), whose
state and error say what the provider answered.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import Session

from clm.channels.models import CHANNELS
from clm.lib.errors import FieldError, NotFound

TEST_JOB = "channels.test"
CHECK_TEXT = {
    "vi": ("Tin nhắn thử từ clm", "Đây là tin nhắn thử kênh {channel} từ clm. Nếu bạn nhận được, kênh đã sẵn sàng."),
    "en": ("Test message from clm", "This is a test of the {channel} channel from clm. If it arrived, the channel works."),
}
PREFIX = {"vi": "[Thử] ", "en": "[Test] "}


def check_address(channel: str, to: Any, region: str = "VN") -> str:
    """The staff address in the form the channel's adapter takes, or a FieldError naming `to`."""
    to = to.strip() if isinstance(to, str) else ""
    if not to:
        raise FieldError("to", "give the address to send the test to")
    if channel == "email":
        try:
            return validate_email(to, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise FieldError("to", str(exc)) from None
    if channel in ("sms", "zalo"):
        from clm.lib.phones import InvalidPhone, normalize_phone

        try:
            return normalize_phone(to, region)
        except InvalidPhone as exc:
            raise FieldError("to", str(exc)) from None
    if channel == "webhook" and not to.startswith(("https://", "http://")):
        raise FieldError("to", "give an http(s) URL")
    if len(to) > 2000:
        raise FieldError("to", "is too long")
    return to


def sample_customer(session: Session, customer_id: int | None, segment_id: int | None) -> int:
    """The customer a test or a preview is rendered for: the one given, else the segment's first member,
    else the first customer (FieldError on `customer_id` when there is none)."""
    from clm.customers.models import Customer

    if customer_id is not None:
        if session.get(Customer, customer_id) is None:
            raise FieldError("customer_id", f"there is no customer {customer_id}", "not_found")
        return customer_id
    if segment_id is not None:
        from clm.segments.models import SegmentMember

        first = session.scalar(sa.select(sa.func.min(SegmentMember.customer_id)).where(
            SegmentMember.segment_id == segment_id, SegmentMember.exited_at.is_(None)))
        if first is not None:
            return first
    first = session.scalar(sa.select(sa.func.min(Customer.id)).where(Customer.merged_into_id.is_(None)))
    if first is None:
        raise FieldError("customer_id", "there are no customers to render the template for yet")
    return first


def render_test(session: Session, *, template_key: str, customer_id: int | None = None,
                segment_id: int | None = None, context: dict | None = None, locale: str | None = None,
                settings) -> dict[str, Any]:
    """The template rendered for a customer (the one given, else the segment's first member, else the
    first customer), as a test: the subject marked, tracking links left out."""
    from clm.channels.templates import RenderError, get_template, preview

    try:
        template = get_template(session, template_key)
    except NotFound:
        raise FieldError("template_key", f"there is no template {template_key!r}", "not_found") from None
    sample = sample_customer(session, customer_id, segment_id)
    try:
        rendered = preview(session, template_key, sample, context=context, locale=locale, timezone=settings.timezone,
                           default_locale=settings.default_locale)
    except RenderError as exc:
        raise FieldError("template_key", exc.reason, "render_error") from None
    prefix = PREFIX.get(rendered.locale, PREFIX["en"])
    subject = prefix + rendered.subject if rendered.subject else None
    text = rendered.text if template.channel == "email" or not rendered.text else prefix + rendered.text
    return {"channel": template.channel, "template_key": template_key, "customer_id": sample, "subject": subject,
            "text": text, "html": rendered.html, "data": rendered.data, "locale": rendered.locale}


def check_content(channel: str, locale: str) -> dict[str, Any]:
    """The short message a channel's "send test" button sends (no template)."""
    subject, text = CHECK_TEXT.get(locale, CHECK_TEXT["en"])
    return {"channel": channel, "template_key": None, "customer_id": None, "subject": subject,
            "text": text.format(channel=channel), "html": None, "data": {}, "locale": locale}


def queue_test(session: Session, content: dict[str, Any], to: str, *, requested_by: str | None = None,
               settings, now: datetime | None = None):
    """Queue the `channels.test` job for `content` (from `render_test` or `check_content`). Returns the job."""
    from clm.jobs import queue

    channel = content["channel"]
    if channel not in CHANNELS:
        raise FieldError("channel", f"must be one of {', '.join(CHANNELS)}")
    if channel == "zalo" and not content["data"].get("template_id"):
        raise FieldError("template_key", "a Zalo test needs a ZNS template (Zalo sends only approved templates)")
    address = check_address(channel, to, settings.default_region)
    return queue.enqueue(session, TEST_JOB, {**content, "to": address, "requested_by": requested_by},
                         max_attempts=1, now=now)


def send_test(session: Session, job, adapters: dict) -> str:
    """The `channels.test` job: hand the content to the channel's adapter. Raises JobError with the
    provider's reason, which the job keeps (one attempt)."""
    from clm.channels.adapters.base import Outgoing, SendError
    from clm.channels.adapters.registry import SETTING_HINTS
    from clm.jobs.runner import JobError

    args = job.args
    channel = args.get("channel")
    adapter = adapters.get(channel)
    if adapter is None:
        raise JobError(f"no {channel} provider is configured: {SETTING_HINTS.get(channel, 'configure one')}",
                       permanent=True)
    data = dict(args.get("data") or {})
    data["purpose"] = "transactional"
    if channel == "messenger":
        data["last_inbound_at"] = _last_inbound(session, args.get("to"))
    if channel == "webhook":
        data["body"] = {"test": True, "template": args.get("template_key"), "subject": args.get("subject"),
                        "text": args.get("text"), "data": args.get("data") or {}}
    outgoing = Outgoing(message_id=0, idempotency_key=f"test:{job.id}", channel=channel, to=args.get("to") or "",
                        text=args.get("text") or "", subject=args.get("subject"), html=args.get("html"), data=data)
    try:
        result = adapter.send(outgoing)
    except SendError as exc:
        code = f"[{exc.code}] " if exc.code is not None else ""
        raise JobError(f"{code}{exc.reason}", permanent=True) from None
    return result.status


def _last_inbound(session: Session, psid: str | None) -> str | None:
    from clm.channels.sending import last_inbound_messenger
    from clm.customers.models import Identity

    customer_id = session.scalar(sa.select(Identity.customer_id).where(Identity.kind == "facebook",
                                                                       Identity.value == psid).limit(1))
    last = last_inbound_messenger(session, customer_id) if customer_id is not None else None
    return last.isoformat() if last else None


def register(registry, settings, adapters: dict | None = None) -> None:
    """The `channels.test` job kind, with the worker's adapters (built once)."""
    built: dict[str, dict] = {}

    def handle(session: Session, job) -> None:
        if "adapters" not in built:
            from clm.channels.adapters.registry import build_adapters

            built["adapters"] = adapters if adapters is not None else build_adapters(settings)
        send_test(session, job, built["adapters"])

    registry.register(TEST_JOB, handle)


def state_of_test(session: Session, job_id: int) -> tuple[str, str | None] | None:
    """(state, last error) of a test send's job, for the page that asked for it; None if unknown."""
    from clm.jobs.models import Job

    job = session.get(Job, job_id)
    if job is None or job.kind != TEST_JOB:
        return None
    return job.state, (job.errors[-1].get("error") if job.errors else None)
