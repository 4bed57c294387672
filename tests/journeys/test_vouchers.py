"""The issue_voucher action: a per-customer code of a loyalty reward, once per step (a retried step finds
it), shown by the next message as {{ voucher.code }}, usable once at checkout; checked on save."""

from __future__ import annotations

import sqlalchemy as sa

from clm.jobs.models import Job
from clm.journeys import service
from clm.journeys.models import Journey
from clm.journeys.validate import check
from clm.loyalty.models import Entry, Member, Redemption, Reward
from tests.journeys.conftest import END, graph, run_of


def reward(db, **fields) -> int:
    row = Reward(name=fields.pop("name", "Quà sinh nhật"), kind="voucher", points=100, value=50_000,
                 voucher_days=7, tiers=[], active=False, **fields)
    db.add(row)
    db.commit()
    return row.id


def voucher_node(reward_id: int, nxt: str = "end") -> dict:
    return {"id": "gift", "type": "issue_voucher", "reward_id": reward_id, "next": nxt}


def redemptions(db, customer_id: int) -> list[Redemption]:
    db.expire_all()
    return list(db.scalars(sa.select(Redemption).where(Redemption.customer_id == customer_id)))


def test_the_next_message_shows_the_customers_own_code_which_checkout_takes_once(db, clock, people, drain, live):
    from clm.channels.models import Message
    from clm.channels.templates import create_template
    from clm.customers.consent import record_consent
    from clm.loyalty import rewards
    from clm.loyalty.ledger import LedgerError

    anna, binh = people(2, email="khach@example.vn")
    for who in (anna, binh):
        record_consent(db, who, channel="email", purpose="marketing", granted=True, source="test")
    create_template(db, key="gift-mail", channel="email",
                    variants={"vi": {"subject": "Quà", "text": "Mã của bạn: {{ voucher.code }} ({{ voucher.value | vnd }})"}})
    gift = reward(db)
    journey = live(graph(voucher_node(gift, "mail"), {"id": "mail", "type": "send_message", "channel": "email",
                                                      "template": "gift-mail", "next": "end"}, END))
    for who in (anna, binh):
        service.trigger(db, journey, who, None, {})
    db.commit()
    drain()

    [mine], [theirs] = redemptions(db, anna), redemptions(db, binh)
    assert mine.code != theirs.code and len(mine.code) == rewards.CODE_LENGTH
    assert (mine.points, mine.status, mine.reward_id, mine.value) == (0, "issued", gift, 50_000)
    message = db.scalar(sa.select(Message).where(Message.customer_id == anna))
    assert mine.code in message.text
    assert run_of(db, journey, anna).status == "completed"
    assert rewards.consume_code(db, mine.code, "SO-1", 300_000, clock.now).discount == 50_000
    try:
        rewards.consume_code(db, mine.code, "SO-2", 300_000, clock.now)
        raise AssertionError("a voucher was used twice")
    except LedgerError as exc:
        assert exc.code == "voucher_used"


def test_a_gift_spends_no_points_and_shows_in_the_members_history(db, clock, people, drain, live):
    from clm.loyalty.verify import verify

    [anna] = people()
    journey = live(graph(voucher_node(reward(db)), END))
    service.trigger(db, journey, anna, None, {})
    db.commit()
    drain()
    member = db.get(Member, anna)
    assert (member.available, member.redeemed) == (0, 0)
    entry = db.scalar(sa.select(Entry).where(Entry.customer_id == anna))
    assert (entry.kind, entry.reason, entry.available) == ("gift", "Gift: Quà sinh nhật", 0)
    assert verify(db) == []


def test_a_step_retried_after_a_failure_issues_the_voucher_once(db, clock, people, drain, live, monkeypatch):
    from clm.journeys import engine

    [anna] = people()
    journey = live(graph(voucher_node(reward(db)), END))
    original, failures = engine.arrive, []

    def crash_after_the_effect(session, run, graph_, node_id, now, timezone):
        if node_id == "end" and not failures:
            failures.append(node_id)
            raise RuntimeError("worker lost its connection")
        return original(session, run, graph_, node_id, now, timezone)

    monkeypatch.setattr(engine, "arrive", crash_after_the_effect)
    service.trigger(db, journey, anna, None, {})
    db.commit()
    drain()
    clock.advance(minutes=5)  # past the first backoff
    drain()
    assert failures == ["end"]
    [voucher] = redemptions(db, anna)
    run = run_of(db, journey, anna)
    assert run.status == "completed" and run.context["voucher"]["code"] == voucher.code


def test_the_same_idempotency_key_gives_the_first_voucher_again(db, clock, people):
    from clm.loyalty import gifts

    [anna] = people()
    gift = reward(db)
    first, made = gifts.give(db, anna, gift, idempotency_key="journey:1:1", now=clock.now)
    again, made_again = gifts.give(db, anna, gift, idempotency_key="journey:1:1", now=clock.now)
    assert (made, made_again, again.id) == (True, False, first.id)
    assert len(redemptions(db, anna)) == 1


def test_out_of_stock_parks_the_step_with_the_reason_and_the_stock_never_goes_below_zero(db, clock, people, drain,
                                                                                        live):
    anna, binh = people(2)
    gift = reward(db, stock=1)
    journey = live(graph(voucher_node(gift), END))
    for who in (anna, binh):
        service.trigger(db, journey, who, None, {})
    db.commit()
    drain()
    runs = {who: run_of(db, journey, who) for who in (anna, binh)}
    parked = [r for r in runs.values() if r.status == "parked"]
    assert len(parked) == 1 and "out of stock" in parked[0].error and "'gift'" in parked[0].error
    assert db.get(Reward, gift).stock == 0
    assert len(redemptions(db, anna)) + len(redemptions(db, binh)) == 1
    assert db.scalar(sa.select(Job.state).where(Job.kind == "journey.step", Job.state == "dead")) == "dead"


def test_saving_a_voucher_step_naming_no_reward_is_refused_with_the_node(db):
    _, problems = check(db, graph(voucher_node(999), END))
    assert [(p.field, p.node) for p in problems] == [("definition.nodes[0].reward_id", "gift")]
    assert "reward 999 does not exist" in problems[0].message and "'gift'" in problems[0].message


def test_with_a_loyalty_program_the_birthday_greeting_carries_the_customers_own_code(db, clock, people, drain):
    from datetime import date

    from clm.channels.models import Message
    from clm.customers.consent import record_consent
    from clm.journeys import playbook
    from clm.journeys.consumers import sweep_dates
    from clm.loyalty.program import ProgramSettings, save_program

    save_program(db, ProgramSettings())
    [anna] = people(given_name="An", email="an@example.vn", birthday=date(1990, 3, 3))
    record_consent(db, anna, channel="email", purpose="marketing", granted=True, source="test")
    [result] = playbook.install(db, ["birthday"], activate=True, now=clock.now, timezone="Asia/Ho_Chi_Minh")
    db.commit()
    assert (result.status, result.note, result.shared_codes) == ("installed", None, [])
    gift = db.scalar(sa.select(Reward).where(Reward.name.like("Quà sinh nhật%")))
    assert (gift.kind, gift.percent, gift.max_discount, gift.voucher_days, gift.active) == ("percent", 15, 200_000, 7, False)
    node = service.current_version(db, db.get(Journey, result.journey_id)).definition["nodes"][1]
    assert (node["id"], node["type"], node["reward_id"]) == ("gift", "issue_voucher", gift.id)

    sweep_dates(db, clock.now, "Asia/Ho_Chi_Minh")
    db.commit()
    drain()
    [voucher] = redemptions(db, anna)
    message = db.scalar(sa.select(Message).where(Message.customer_id == anna))
    assert voucher.code in message.text and "SINHNHAT" not in message.text
    assert "giảm 15%" in message.text and "200.000" in message.text


def test_installing_again_with_a_program_makes_no_second_reward_and_win_back_gives_its_offer_a_voucher(db, clock):
    from clm.journeys import playbook
    from clm.loyalty.program import ProgramSettings, save_program

    save_program(db, ProgramSettings())
    [first] = playbook.install(db, ["win_back"], now=clock.now)
    service.delete_journey(db, first.journey_id)  # installed again: the reward is found by its name
    playbook.install(db, ["win_back"], now=clock.now)
    assert db.scalar(sa.select(sa.func.count()).select_from(Reward)) == 1
    journey = db.scalar(sa.select(Journey))
    nodes = {n["id"]: n for n in service.current_version(db, journey).definition["nodes"]}
    split = nodes["split"]["branches"][0]
    assert (split["next"], nodes["voucher"]["type"], nodes["voucher"]["next"]) == ("voucher", "issue_voucher", "offer")


def test_without_a_loyalty_program_the_playbook_installs_with_its_shared_codes_and_says_so(db, clock):
    from clm.journeys import playbook

    results = {r.key: r for r in playbook.install(db, ["birthday", "win_back", "welcome"], now=clock.now)}
    assert [r.status for r in results.values()] == ["installed"] * 3
    assert results["birthday"].shared_codes == ["SINHNHAT"] and "no loyalty program" in results["birthday"].note
    assert results["win_back"].shared_codes == ["GIAM50K"] and results["welcome"].note is None
    birthday = service.current_version(db, db.get(Journey, results["birthday"].journey_id)).definition
    assert {n["type"] for n in birthday["nodes"]} >= {"update_trait"} and db.scalar(
        sa.select(sa.func.count()).select_from(Reward)) == 0
    assert all(n["type"] != "issue_voucher" for n in birthday["nodes"])
