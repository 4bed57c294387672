"""Every move of the default stage model, driven by facts through ingestion and the consumers."""

from __future__ import annotations

from tests.lifecycle.life import day


def test_a_known_visitor_starts_in_awareness(life):
    life.identify("an", 0, email="an@example.vn")
    life.react(0)
    assert life.moves("an") == [(None, "awareness", "known")]


def test_a_product_view_moves_a_visitor_to_consideration(life):
    life.identify("an", 0)
    life.react(0)
    life.track("an", "Product Viewed", 1, product_id="tea")
    life.react(1)
    assert life.stage("an") == "consideration"
    assert life.history("an")[-1].rule == "engaged"
    assert life.history("an")[-1].changed_at == day(1)


def test_the_first_order_is_a_conversion(life):
    life.identify("an", 0)
    life.track("an", "Signed Up", 1)
    life.react(1)
    life.order("an", 3)
    life.react(3)
    assert life.moves("an") == [(None, "consideration", "engaged"), ("consideration", "conversion", "first-purchase")]
    assert life.history("an")[-1].changed_at == day(3)


def test_a_second_order_moves_a_buyer_to_retention(life):
    life.identify("an", 0)
    life.order("an", 0)
    life.react(0)
    life.order("an", 20)
    life.react(20)
    assert life.moves("an")[-1] == ("conversion", "retention", "repeat-purchase")
    assert life.history("an")[-1].changed_at == day(20)


def test_a_fifth_order_makes_a_frequent_buyer_loyal(life):
    life.identify("an", 0)
    for n in range(5):
        life.order("an", n * 10)
        life.react(n * 10)
    assert life.stage("an") == "loyalty"
    assert life.moves("an")[-1] == ("retention", "loyalty", "frequent-buyer")


def test_a_buyer_who_writes_a_review_becomes_an_advocate(life):
    life.identify("an", 0)
    life.order("an", 0)
    life.react(0)
    life.track("an", "Review Submitted", 5, rating=5)
    life.react(5)
    assert life.moves("an")[-1] == ("conversion", "loyalty", "advocate")


def test_a_referral_from_a_repeat_buyer_makes_them_an_advocate(life):
    life.identify("an", 0)
    life.order("an", 0)
    life.order("an", 10)
    life.react(10)
    life.track("an", "Referral Sent", 12, referee="binh@example.vn")
    life.react(12)
    assert life.moves("an")[-2:] == [(None, "retention", "repeat-purchase"), ("retention", "loyalty", "advocate")]


def test_a_referral_without_a_purchase_is_not_advocacy(life):
    life.identify("an", 0)
    life.track("an", "Referral Sent", 1)
    life.react(1)
    assert life.stage("an") == "awareness"


def test_time_alone_moves_a_regular_to_at_risk_then_churned_by_the_sweep(life):
    life.identify("an", 0)
    for n in (0, 10, 20):  # a usual gap of 10 days
        life.order("an", n)
    life.react(20)
    assert life.stage("an") == "retention"
    assert life.sweep(35) == 0  # 15 days: within two gaps
    assert life.sweep(45) == 1  # 25 days: more than two gaps
    assert life.moves("an")[-1] == ("retention", "at_risk", "overdue")
    assert life.history("an")[-1].changed_at == day(40)  # when the second gap ran out, not when noticed
    assert life.sweep(70) == 1
    assert life.moves("an")[-1] == ("at_risk", "churned", "lapsed")
    assert life.history("an")[-1].changed_at == day(60)


def test_the_usual_gap_is_the_customers_own(life):
    for user, gap in (("fast", 7), ("slow", 30)):
        life.identify(user, 0)
        for n in range(3):
            life.order(user, n * gap)
    life.react(60)
    life.sweep(60 + 16)
    assert life.stage("fast") in ("at_risk", "churned") and life.stage("slow") == "retention"


def test_a_one_time_buyer_is_measured_by_the_shop_wide_usual_gap(life):
    for user in ("a", "b", "c"):
        life.identify(user, 0)
        life.order(user, 0)
        life.order(user, 20)  # the shop's usual gap: 20 days
    life.identify("once", 0)
    life.order("once", 20)
    life.react(20)
    life.sweep(55)  # 35 days: under two shop gaps
    assert life.stage("once") == "conversion"
    life.sweep(61)
    assert life.moves("once")[-1] == ("conversion", "at_risk", "overdue")


def test_the_usual_gap_is_never_shorter_than_the_floor(life):
    life.identify("an", 0)
    life.order("an", 0)
    life.order("an", 0.01)  # two orders minutes apart
    life.react(1)
    life.sweep(10)  # 10 days < 2 x min_gap_days (7)
    assert life.stage("an") == "retention"


def test_a_new_order_reactivates_an_at_risk_customer(life):
    life.identify("an", 0)
    for n in (0, 10, 20):
        life.order("an", n)
    life.react(20)
    life.sweep(45)
    life.order("an", 50)
    life.react(50)
    assert life.moves("an")[-1] == ("at_risk", "retention", "reactivated")
    assert life.history("an")[-1].changed_at == day(50)


def test_a_new_order_reactivates_a_churned_one_time_buyer(life):
    life.identify("an", 0)
    life.order("an", 0)
    life.react(0)
    life.sweep(200)
    assert life.stage("an") == "churned"
    life.order("an", 210)
    life.react(210)
    assert life.moves("an")[-1] == ("churned", "retention", "reactivated")


def test_a_reactivated_frequent_buyer_goes_back_to_loyalty_through_retention(life):
    life.identify("an", 0)
    for n in range(5):
        life.order("an", n * 10)
    life.react(40)
    life.sweep(200)
    life.order("an", 210)
    life.react(210)
    assert life.moves("an")[-2:] == [("churned", "retention", "reactivated"), ("retention", "loyalty", "frequent-buyer")]


def test_a_full_refund_of_the_only_order_undoes_the_conversion(life):
    life.identify("an", 0)
    life.track("an", "Product Viewed", 0, product_id="tea")
    order = life.order("an", 1)
    life.react(1)
    life.refund("an", order, 3)
    life.react(3)
    assert life.stage("an") == "consideration"
    assert life.stats("an").orders_count == 0 and life.stats("an").refunded_orders == 1


def test_facts_arriving_together_move_a_customer_straight_to_where_they_belong(life):
    life.send([{"type": "identify", "userId": "an"}] + [
        {"type": "track", "userId": "an", "event": "Order Completed", "timestamp": day(n).isoformat(),
         "properties": {"order_id": f"O{n}", "total": 100000}} for n in range(3)], 3)
    life.react(3)
    assert life.moves("an") == [(None, "retention", "repeat-purchase")]
