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
