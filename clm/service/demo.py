"""The service desk in the demo shop: five agents in two teams, an inbox per channel (Zalo, Messenger, email,
the hotline, the web chat of the shop's site), business hours and SLA policies, a few thousand past tickets
over the last months, and a live inbox of open conversations.

The past is written in bulk (tickets with their conversation, the customer's message, the agent's answer,
the status history and the met or breached first-response clock), shaped like a real desk: busy mornings and
evenings, Zalo first, more tickets on Mondays, most answered within the hour, a few late. The live inbox goes
through the real path (`conversations.receive`: routing, SLA clocks, the outbox), so the workspace has
assigned tickets, a queue and clocks running when the demo starts. A second or two on 20,000 customers.
"""

from __future__ import annotations

import random
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from clm.db.bulk import allocate_ids, insert_rows
from clm.db.engine import for_writing
from clm.lib.clock import utcnow

AGENTS = [("Trần Thị Lan", "lan", "online", 8), ("Nguyễn Minh Khoa", "khoa", "online", 8),
          ("Phạm Thu Trang", "trang", "busy", 6), ("Lê Quốc Bảo", "bao", "online", 10),
          ("Võ Ngọc Hân", "han", "offline", 8)]
CHANNELS = [("zalo", 40), ("messenger", 20), ("chat", 15), ("email", 15), ("phone", 10)]
# (subject, the customer's message, the agent's answer)
TOPICS = [
    ("Đơn hàng chưa giao", "Shop ơi đơn của em đặt 3 hôm rồi chưa thấy giao ạ?",
     "Dạ shop kiểm tra thì đơn đang ở kho Bình Dương, mai anh/chị nhận được ạ."),
    ("Đổi size", "Áo em nhận bị rộng, đổi sang size nhỏ hơn được không shop?",
     "Dạ được ạ, anh/chị gửi lại hàng trong 7 ngày, shop đổi size miễn phí."),
    ("Hỏi khuyến mãi", "Mã giảm giá tháng này còn dùng được không ạ?",
     "Dạ mã vẫn dùng được đến hết tháng, áp dụng cho đơn từ 300.000 ₫ ạ."),
    ("Hàng bị lỗi", "Sản phẩm em nhận bị trầy, shop xử lý giúp em với.",
     "Shop xin lỗi anh/chị, shop gửi sản phẩm mới ngay hôm nay và nhận lại hàng lỗi ạ."),
    ("Hoàn tiền", "Em đã trả hàng tuần trước, bao giờ em nhận lại tiền ạ?",
     "Dạ tiền đã được hoàn về tài khoản, 3-5 ngày làm việc ngân hàng sẽ báo ạ."),
    ("Tích điểm", "Đơn hôm qua sao chưa thấy cộng điểm thành viên ạ?",
     "Dạ điểm sẽ được cộng sau 7 ngày khi đơn hoàn tất ạ."),
    ("Tư vấn sản phẩm", "Shop tư vấn giúp em mẫu nào hợp đi làm ạ?",
     "Dạ anh/chị tham khảo mẫu sơ mi linen mới về, mặc mát và lịch sự ạ."),
]
HOURS = [0, 0, 0, 0, 0, 0, 1, 2, 5, 8, 9, 8, 6, 5, 6, 7, 7, 6, 6, 8, 9, 8, 5, 2]  # by local hour
PAST = 3_000
LIVE = 18


def _pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    return rng.choices([k for k, _ in weighted], [w for _, w in weighted])[0]


def install_for_demo(session_factory: sessionmaker[Session], seed: int = 42, now: datetime | None = None,
                     days: int = 90, past: int = PAST) -> str:
    """Install the service desk's demo; a line saying what it made."""
    from clm.access.users import create_user
    from clm.customers.models import Customer
    from clm.service import chat
    from clm.service.agents import AgentIn, TeamIn, save_agent, save_team
    from clm.service.conversations import InboxIn, save_inbox
    from clm.service.routing import RuleIn, save_rule
    from clm.service.sla import CalendarIn, PolicyIn, save_calendar, save_policy

    now = now or utcnow()
    rng = random.Random(seed * 104729 + 7)
    with session_factory() as session:
        for_writing(session)
        users = [create_user(session, email=f"{key}@demo.clm.example.com", name=name, role="agent",
                             password=secrets.token_urlsafe(12), locale="vi") for name, key, _, _ in AGENTS]
        for user, (_, _, availability, capacity) in zip(users, AGENTS, strict=True):
            save_agent(session, user.id, AgentIn(availability=availability, capacity=capacity), now=now)
        chat_team = save_team(session, TeamIn(name="Chat & Zalo", members=[u.id for u in users[:3]]))
        mail_team = save_team(session, TeamIn(name="Email & tổng đài", members=[u.id for u in users[2:]]))
        save_rule(session, RuleIn(team_id=mail_team.id, channel="email"))
        save_rule(session, RuleIn(team_id=mail_team.id, channel="phone"))
        save_rule(session, RuleIn(team_id=chat_team.id, channel="zalo"))
        calendar = save_calendar(session, CalendarIn(name="Giờ làm việc", is_default=True, hours={
            d: [["08:00", "12:00"], ["13:00", "21:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat")}))
        save_policy(session, PolicyIn(name="Khẩn", priority="urgent", first_response_minutes=15,
                                      resolution_minutes=240, calendar_id=calendar.id, position=1))
        save_policy(session, PolicyIn(name="Chuẩn", first_response_minutes=60, next_response_minutes=120,
                                      resolution_minutes=24 * 60, calendar_id=calendar.id, position=2))
        inboxes = {"zalo": save_inbox(session, InboxIn(name="Zalo OA cửa hàng", channel="zalo", language="vi")),
                   "messenger": save_inbox(session, InboxIn(name="Fanpage Messenger", channel="messenger")),
                   "email": save_inbox(session, InboxIn(name="cskh@demo.clm.example.com", channel="email",
                                                        address="cskh@demo.clm.example.com")),
                   "phone": save_inbox(session, InboxIn(name="Tổng đài 1900", channel="phone"))}
        site = chat.save_site(session, chat.SiteIn(name="Website cửa hàng", greeting={
            "vi": "Chào bạn! Shop có thể giúp gì ạ?", "en": "Hello! How can we help?"}))
        inboxes["chat"] = session.get(type(inboxes["zalo"]), site.inbox_id)
        customers = list(session.scalars(sa.select(Customer.id).where(Customer.merged_into_id.is_(None))
                                         .order_by(Customer.id)))
        session.commit()
        if not customers:
            return "no customers to serve"
        past = _past(session, rng, customers, [u.id for u in users], inboxes, now, days, past)
        session.commit()
        live = _live(session, rng, customers, inboxes, now)
        session.commit()
    return (f"{len(users)} agents in 2 teams, {len(inboxes)} inboxes (web chat key {site.public_key}), "
            f"{past:,} past tickets over {days} days, {live} open in the live inbox")


def _when(rng: random.Random, now: datetime, days: int) -> datetime:
    """A moment in the last `days` days at an hour the shop's customers write (UTC+7)."""
    while True:
        day = now - timedelta(days=rng.randint(1, days))
        if day.weekday() == 6 and rng.random() < 0.6:
            continue  # quieter Sundays
        hour = rng.choices(range(24), HOURS)[0]
        local = day.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(hours=hour - 7,
                                                                                    minutes=rng.randint(0, 59))
        if local < now - timedelta(hours=2):
            return local


def _past(session: Session, rng: random.Random, customers: list[int], agents: list[int], inboxes: dict,
          now: datetime, days: int, count: int) -> int:
    from clm.service.models import PRIORITY_RANK, Change, Conversation, Message, SlaTimer, Ticket
    from clm.service.tickets import ticket_numbers

    numbers = ticket_numbers(session, count)
    ids = allocate_ids(session, Ticket.__table__, count)
    conv_ids = allocate_ids(session, Conversation.__table__, count)
    msg_ids = allocate_ids(session, Message.__table__, 2 * count)
    tickets, conversations, messages, changes, timers = [], [], [], [], []
    for k in range(count):
        channel = _pick(rng, CHANNELS)
        customer = rng.choice(customers)
        opened = _when(rng, now, days)
        subject, asked, answer = rng.choice(TOPICS)
        priority = _pick(rng, [("normal", 80), ("high", 14), ("urgent", 3), ("low", 3)])
        # most answered within the hour, some within the day, a few late
        wait = rng.choice([rng.uniform(2, 45)] * 7 + [rng.uniform(45, 240)] * 2 + [rng.uniform(240, 1440)])
        answered = opened + timedelta(minutes=wait)
        solved = answered + timedelta(minutes=rng.uniform(5, 2 * 24 * 60))
        closed = solved + timedelta(days=4)
        status = "closed" if closed < now else "solved"
        agent = rng.choice(agents)
        tid, cid = ids[k], conv_ids[k]
        changed = closed if status == "closed" else solved
        tickets.append((tid, f"TK-{numbers[k]:06d}", customer, subject, status, priority, PRIORITY_RANK[priority],
                        False, [], {}, channel, inboxes[channel].id, "vi", agent, None, "demo history", opened,
                        opened, answered, opened, answered, solved, changed,
                        closed if status == "closed" else None, changed))
        conversations.append((cid, tid, inboxes[channel].id, customer, channel, f"demo:{tid}", answered, opened))
        messages.append((msg_ids[2 * k], cid, tid, customer, "in", None, asked, opened, []))
        messages.append((msg_ids[2 * k + 1], cid, tid, customer, "out", agent, answer, answered, []))
        for old, new, at, actor in ((None, "new", opened, "customer"), ("new", "open", answered, "user"),
                                    ("open", "solved", solved, "user")) + (
                (("solved", "closed", closed, "system"),) if status == "closed" else ()):
            changes.append((tid, customer, agent if actor == "user" else None, actor, "status",
                            {"old": old, "new": new}, at))
        target = 15 if priority == "urgent" else 60
        met = wait <= target
        timers.append((tid, customer, "first_response", target, opened, opened + timedelta(minutes=target),
                       "met" if met else "breached", {}, answered if met else None,
                       None if met else opened + timedelta(minutes=target)))
    insert_rows(session, Ticket.__table__, (
        "id", "number", "customer_id", "subject", "status", "priority", "priority_rank", "vip", "tags", "fields",
        "channel", "inbox_id", "language", "assignee_id", "team_id", "assignment_reason", "assigned_at",
        "created_at", "first_response_at", "last_customer_message_at", "last_agent_reply_at", "solved_at",
        "status_changed_at", "closed_at", "updated_at"),
        tickets)
    insert_rows(session, Conversation.__table__, ("id", "ticket_id", "inbox_id", "customer_id", "channel",
                                                  "thread_key", "last_message_at", "created_at"), conversations)
    insert_rows(session, Message.__table__, ("id", "conversation_id", "ticket_id", "customer_id", "direction",
                                             "author_id", "body", "created_at", "attachments"), messages)
    insert_rows(session, Change.__table__, ("ticket_id", "customer_id", "user_id", "actor", "field", "values", "at"),
                changes)
    insert_rows(session, SlaTimer.__table__, ("ticket_id", "customer_id", "metric", "target_minutes", "started_at",
                                              "due_at", "state", "explanation", "met_at", "breached_at"), timers)
    return count


def _live(session: Session, rng: random.Random, customers: list[int], inboxes: dict, now: datetime) -> int:
    """Open conversations that arrived in the last hours, through the real inbound path."""
    from clm.service.conversations import InboundIn, receive

    made = 0
    for k in range(LIVE):
        channel = _pick(rng, CHANNELS[:4])
        subject, asked, _ = rng.choice(TOPICS)
        at = now - timedelta(minutes=rng.randint(1, 180))
        receive(session, InboundIn(inbox_id=inboxes[channel].id, customer_id=rng.choice(customers), body=asked,
                                   subject=subject if channel == "email" else None, thread_key=f"demo-live:{k}",
                                   external_id=f"demo-live:{k}", at=at), now=now)
        made += 1
    return made
