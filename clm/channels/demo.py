"""Messaging in the demo shop: Vietnamese/English templates and one broadcast sent ten days ago, with what
its recipients did (opens, clicks, an unsubscribe or two, bounces) and the orders that followed.

The broadcast is queued through `enqueue_many` (so consent and suppressions apply as for a real one);
the sending is then played back instead of going to a mail server: each queued message is marked sent,
and opens, clicks and unsubscribes go through the same tracking functions the /t/ links call, so the
customers' timelines show them. Orders are the demo's own: the report attributes those its recipients
happened to place within the window.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

TEMPLATES = [
    ("welcome", "email", "Chào mừng khách mới / Welcome", {
        "vi": {"subject": "Chào mừng {{ customer.given_name or customer.name }} đến với cửa hàng!",
               "text": "Xin chào {{ customer.name }},\n\nCảm ơn bạn đã đăng ký. Nhập mã CHAOBAN để được giảm 10% cho đơn "
                       "đầu tiên.\n\nHuỷ nhận tin: {{ unsubscribe_url }}"},
        "en": {"subject": "Welcome, {{ customer.given_name or customer.name }}!",
               "text": "Hello {{ customer.name }},\n\nThank you for signing up. Use the code CHAOBAN for 10% off your "
                       "first order.\n\nUnsubscribe: {{ unsubscribe_url }}"}}),
    ("tet-sale", "email", "Khuyến mãi Tết / Tết sale", {
        "vi": {"subject": "{{ customer.given_name or customer.name }} ơi, Tết sale giảm đến 30%",
               "text": "Chào {{ customer.name }},\n\nMừng Xuân mới, cửa hàng giảm đến 30% cho trà, bánh và quà Tết.\n"
                       "Xem ngay: https://shop.example.vn/tet\n\nHuỷ nhận tin: {{ unsubscribe_url }}",
               "html": "<p>Chào <b>{{ customer.name }}</b>,</p><p>Mừng Xuân mới, cửa hàng giảm đến 30% cho trà, bánh "
                       "và quà Tết.</p><p><a href=\"https://shop.example.vn/tet\">Xem ưu đãi</a></p>"
                       "<p><small><a href=\"{{ unsubscribe_url }}\">Huỷ nhận tin</a></small></p>"},
        "en": {"subject": "{{ customer.given_name or customer.name }}, our Tết sale: up to 30% off",
               "text": "Hello {{ customer.name }},\n\nFor the new year: up to 30% off tea, cakes and Tết gifts.\n"
                       "See the offers: https://shop.example.vn/tet\n\nUnsubscribe: {{ unsubscribe_url }}",
               "html": "<p>Hello <b>{{ customer.name }}</b>,</p><p>For the new year: up to 30% off tea, cakes and "
                       "Tết gifts.</p><p><a href=\"https://shop.example.vn/tet\">See the offers</a></p>"
                       "<p><small><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></small></p>"}}),
    ("order-thanks", "email", "Cảm ơn đơn hàng / Order thanks", {
        "vi": {"subject": "Cảm ơn bạn đã đặt đơn {{ order.id }}",
               "text": "Đơn {{ order.id }} ({{ order.total|vnd }}) đặt lúc {{ order.placed_at|datetime }} đã được "
                       "ghi nhận."},
        "en": {"subject": "Thank you for order {{ order.id }}",
               "text": "Order {{ order.id }} ({{ order.total|vnd }}) placed {{ order.placed_at|datetime }} is "
                       "confirmed."}}),
    ("sms-comeback", "sms", "Nhắc quay lại (SMS) / Come back (SMS)", {
        "vi": {"text": "Lâu rồi không gặp {{ customer.given_name or customer.name }}! Giảm 15% với mã QUAYLAI tới hết "
                       "tuần."},
        "en": {"text": "We miss you, {{ customer.given_name or customer.name }}! 15% off with QUAYLAI this week."}}),
]
ZNS = ("zalo-order-shipped", "Đơn đã giao (Zalo ZNS) / Order shipped (Zalo)",
       {"vi": {"text": "Đơn {{ order.id }} đang được giao"}},
       {"zns_template_id": "231456", "template_data": {"customer_name": "{{ customer.name }}",
                                                       "order_code": "{{ order.id }}"}})
SEGMENT_CHOICES = ("rfm: loyal", "rfm: champions", "rfm: potential loyalist", "at risk vips")  # recent buyers
MAX_RECIPIENTS = 1500
# unsubscribe: of those who opened; buy: of those who clicked, opened only, or neither
RATES = {"consent": 0.85, "bounce": 0.02, "open": 0.42, "click": 0.3, "unsubscribe": 0.04,
         "buy_clicked": 0.35, "buy_opened": 0.06, "buy_other": 0.01}
GIFTS = [("TET-HOP-QUA", "Hộp quà Tết An Khang", 650_000), ("TRA-SEN", "Trà sen Tây Hồ", 259_000),
         ("BANH-PIA", "Bánh pía Sóc Trăng", 189_000), ("MUT-TET", "Mứt Tết thập cẩm", 420_000)]


def install_templates(session: Session) -> int:
    from clm.channels.templates import create_template, get_template
    from clm.lib.errors import NotFound

    made = 0
    for key, channel, name, variants in TEMPLATES:
        try:
            get_template(session, key)
        except NotFound:
            create_template(session, key=key, channel=channel, name=name, variants=variants, created_by="demo")
            made += 1
    key, name, variants, provider = ZNS
    try:
        get_template(session, key)
    except NotFound:
        create_template(session, key=key, channel="zalo", name=name, variants=variants, provider=provider,
                        created_by="demo")
        made += 1
    return made


def _audience(session: Session):
    """A ready-made segment of a useful size (the first found), else none."""
    from clm.segments.models import Segment

    for name in SEGMENT_CHOICES:
        segment = session.scalar(sa.select(Segment).where(sa.func.lower(Segment.name) == name))
        if segment is not None and 0 < segment.size <= MAX_RECIPIENTS:
            return segment
    return session.scalar(sa.select(Segment).where(Segment.size > 0, Segment.size <= MAX_RECIPIENTS)
                          .order_by(Segment.size.desc()).limit(1))


def install_past_broadcast(session: Session, settings, now: datetime, seed: int = 7) -> tuple[int, int] | None:
    """The Tết sale broadcast, sent ten days before `now` at 10:00 (business time); returns (broadcast id,
    recipients), or None when no segment fits."""
    from clm.channels import broadcasts
    from clm.channels.models import Broadcast, Message
    from clm.channels.service import enqueue_many
    from clm.channels.status import record_status
    from clm.channels.tracking import record_click, record_open, unsubscribe
    from clm.customers.consent import record_consent
    from clm.customers.models import Customer
    from clm.jobs.models import Job
    from clm.segments.models import SegmentMember

    segment = _audience(session)
    if segment is None:
        return None
    rng = random.Random(seed)
    local = (now - timedelta(days=10)).astimezone(ZoneInfo(settings.timezone))
    sent_at = local.replace(hour=10, minute=0, second=0, microsecond=0)
    members = list(session.scalars(sa.select(SegmentMember.customer_id).where(
        SegmentMember.segment_id == segment.id, SegmentMember.exited_at.is_(None)).order_by(SegmentMember.customer_id)))
    with_email = set(session.scalars(sa.select(Customer.id).where(Customer.id.in_(members), Customer.email.is_not(None))))
    for customer_id in members:  # most signed up for the newsletter two months earlier
        if customer_id in with_email and rng.random() < RATES["consent"]:
            record_consent(session, customer_id, channel="email", purpose="marketing", granted=True,
                           source="demo: newsletter sign-up", recorded_at=sent_at - timedelta(days=60))
    broadcast = broadcasts.create_broadcast(session, name="Khuyến mãi Tết / Tết sale", template_key="tet-sale",
                                            segment_id=segment.id, created_by="demo", settings=settings,
                                            now=sent_at - timedelta(days=1))
    played = settings.model_copy(update={"quiet_hours": "", "marketing_cap": 0})
    enqueue_many(session, customer_ids=members, channel="email", template_key="tet-sale",
                 idempotency_prefix=broadcasts.idempotency_prefix(broadcast.id), broadcast_id=broadcast.id,
                 settings=played, now=sent_at)
    # Played back, not sent: the send jobs are done and each queued message is sent, then read (or not).
    session.execute(sa.update(Job).where(Job.kind == "channels.send", Job.created_at == sent_at)
                    .values(state="completed", completed_at=sent_at, attempt=1))
    queued = list(session.scalars(sa.select(Message).where(Message.broadcast_id == broadcast.id,
                                                           Message.status == "queued").order_by(Message.id)))
    buyers: list[tuple[int, datetime]] = []
    for i, message in enumerate(queued):
        at = sent_at + timedelta(seconds=2 * i)
        message.sent_at, message.provider, message.attempts = at, "smtp", 1
        message.provider_id = f"<demo-{message.id}@shop.example.vn>"
        record_status(session, message, "sending", at=at, force=True)
        if rng.random() < RATES["bounce"]:
            record_status(session, message, "bounced", reason="[550] 5.1.1 mailbox does not exist", at=at, force=True)
            continue
        record_status(session, message, "sent", at=at, force=True)
        buys = RATES["buy_other"]
        if rng.random() < RATES["open"]:
            opened = at + timedelta(minutes=rng.randint(5, 2 * 24 * 60))
            record_open(session, message.id, at=opened)
            buys = RATES["buy_opened"]
            if rng.random() < RATES["click"]:
                record_click(session, message.id, "https://shop.example.vn/tet",
                             at=opened + timedelta(seconds=rng.randint(5, 300)))
                buys = RATES["buy_clicked"]
            if rng.random() < RATES["unsubscribe"]:
                unsubscribe(session, message.id, at=opened + timedelta(minutes=1))
                buys = 0
        if rng.random() < buys:
            buyers.append((message.customer_id, at + timedelta(hours=rng.randint(2, 6 * 24))))
    _orders(session, broadcast.id, [(c, min(t, now - timedelta(hours=1))) for c, t in buyers], rng)
    finished = sent_at + timedelta(seconds=2 * len(queued) + 60)
    session.execute(sa.update(Broadcast).where(Broadcast.id == broadcast.id).values(
        status="sent", send_at=sent_at, started_at=sent_at, queued_at=sent_at, finished_at=finished,
        updated_at=finished, recipients=len(members)))
    return broadcast.id, len(members)


def _orders(session: Session, broadcast_id: int, buyers: list[tuple[int, datetime]], rng: random.Random) -> None:
    """Orders the recipients placed after the broadcast (with the Tết coupon), as a shop would record them."""
    from clm.channels.timeline import record_customer_event
    from clm.commerce.events import OrderData, ProductData
    from clm.commerce.service import record_orders

    orders = []
    for n, (customer_id, placed_at) in enumerate(buyers, 1):
        sku, name, price = rng.choice(GIFTS)
        quantity = rng.choice((1, 1, 1, 2, 3))
        order_id = f"TET-{broadcast_id}-{n:04d}"
        total = price * quantity * 7 // 10  # 30% off
        orders.append((customer_id, OrderData(order_id=order_id, currency="VND", total=total, subtotal=price * quantity,
                                              discount=price * quantity - total, coupon="TET30", channel="web",
                                              products=[ProductData(sku=sku, name=name, price=price,
                                                                    quantity=quantity)]),
                       placed_at, {"campaign": "tet-sale"}))
        record_customer_event(session, customer_id, "Order Completed",
                              {"order_id": order_id, "total": total, "currency": "VND", "coupon": "TET30"},
                              key=f"demo:{order_id}", at=placed_at)
    record_orders(session, orders)


def install_for_demo(session_factory: sessionmaker[Session], settings, now: datetime | None = None) -> str:
    """Templates and the past broadcast in a freshly built demo; returns a line for the build's output."""
    from clm.db.engine import for_writing
    from clm.lib.clock import utcnow

    with session_factory() as session:
        for_writing(session)
        made = install_templates(session)
        past = install_past_broadcast(session, settings, now or utcnow())
        session.commit()
    if past is None:
        return f"{made} message templates; no segment to send the sample broadcast to"
    return f"{made} message templates, a past broadcast to {past[1]:,} customers"
