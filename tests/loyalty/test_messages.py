"""Messages through the channels: points earned, tier up and points expiring within 30 days are queued once
each, by email (or SMS without an address), in the customer's language, with the member page's link."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from clm.channels.models import Message
from clm.loyalty import ledger, messages
from clm.loyalty.program import require_program
from clm.loyalty.tiers import TierIn, save_tiers
from tests.loyalty.conftest import T0, add_rule

DAY = timedelta(days=1)


@pytest.fixture
def setup(db, program):
    add_rule(db, "1 điểm / 10.000 ₫", "spend", {"points": 1, "per_amount": 10_000, "rounding": "down"})
    save_tiers(db, [TierIn(key="member", name="Thành viên", threshold=0),
                    TierIn(key="silver", name="Bạc", threshold=100, benefits="Giao hàng miễn phí")])
    assert len(messages.install_templates(db)) == 6
    assert messages.install_templates(db) == []  # already there
    db.flush()


def sent(db, kind=None) -> list[Message]:
    query = sa.select(Message).order_by(Message.id)
    if kind:
        query = query.where(Message.template_key.like(f"loyalty.{kind}.%"))
    return list(db.scalars(query))


def announce(db, settings, now):
    step = messages.AnnounceConsumer(settings)
    step(db, now)
    db.commit()
    return step


def test_an_order_that_earns_points_sends_one_message_with_the_points_and_the_member_link(
        db, loyalty, shop, setup, settings):
    an = shop.customer("Nguyễn Văn An", email="an@shop.vn")
    loyalty.order(an, 650_000)
    loyalty.run(T0)
    step = announce(db, settings, T0 + timedelta(minutes=1))
    [message] = sent(db, "points_earned")
    assert (message.channel, message.purpose, message.customer_id) == ("email", "transactional", an.id)
    assert "65 điểm" in message.subject and "65 điểm" in message.text and "/m/" in message.text
    step.tail._handled.clear()
    from clm.outbox.models import OutboxCursor

    db.execute(sa.update(OutboxCursor).where(OutboxCursor.consumer == "loyalty.messages").values(last_id=0))
    announce(db, settings, T0 + timedelta(minutes=2))
    assert len(sent(db, "points_earned")) == 1  # read again, queued once


def test_reaching_a_tier_sends_the_tier_up_message_in_the_customers_language(db, loyalty, shop, setup, settings):
    bich = shop.customer("Trần Bích", email="bich@shop.vn", locale="en")
    loyalty.order(bich, 1_200_000)  # 120 qualifying points: Bạc
    loyalty.run(T0)
    announce(db, settings, T0 + timedelta(minutes=1))
    [message] = sent(db, "tier_up")
    assert message.locale == "en" and "reached Bạc" in message.text and "Giao hàng miễn phí" in message.text


def test_without_an_email_the_message_goes_by_sms_and_without_either_nothing_is_queued(
        db, loyalty, shop, setup, settings):
    chi = shop.customer("Lê Chi", phone="+84912345678")
    dung = shop.customer("Dũng")
    loyalty.order(chi, 300_000)
    loyalty.order(dung, 300_000)
    loyalty.run(T0)
    announce(db, settings, T0 + timedelta(minutes=1))
    assert [(m.customer_id, m.channel) for m in sent(db, "points_earned")] == [(chi.id, "sms")]


def test_points_earned_long_ago_are_not_announced(db, loyalty, shop, setup, settings):
    an = shop.customer("An", email="an@shop.vn")
    loyalty.order(an, 650_000)
    loyalty.run(T0)
    announce(db, settings, T0 + 5 * DAY)
    assert sent(db, "points_earned") == []


def test_points_expiring_within_30_days_are_reminded_once(db, shop, setup, settings):
    program = require_program(db)  # lots last 2 months (the fixture's program)
    an = shop.customer("An", email="an@shop.vn")
    bao = shop.customer("Bảo", email="bao@shop.vn")
    for customer, at in ((an, T0), (bao, T0 + 20 * DAY)):
        member = ledger.lock_member(db, customer.id, at)
        ledger.credit(db, member, program, key=f"t:{customer.id}", points=80, reason="Quà", source="system",
                      source_id=None, at=at, now=at)
    db.commit()
    now = T0 + 40 * DAY  # An's lot expires on 1 May (21 days on), Bảo's on 21 May (41 days on)
    assert messages.remind_expiring(db, settings, now) == 1
    db.commit()
    [message] = sent(db, "points_expiring")
    assert message.customer_id == an.id and "80 điểm" in message.text and "01/05/2025" in message.text
    assert messages.remind_expiring(db, settings, now + DAY) == 0
    assert len(sent(db, "points_expiring")) == 1
