"""Templates: sandboxed, strict, versioned, in Vietnamese and English, with money and dates."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clm.channels.templates import (
    RenderError,
    create_template,
    get_version,
    preview,
    render_version,
    update_template,
    versions_of,
)
from clm.lib.errors import FieldError


def render(source: dict, variables: dict, channel: str = "sms", locale: str = "vi", provider: dict | None = None):
    from clm.channels.models import TemplateVersion

    return render_version(TemplateVersion(variants={locale: source}, provider=provider or {}), channel, locale, variables)


def test_money_and_dates_read_the_way_each_language_writes_them():
    placed = datetime(2025, 3, 1, 18, 30, tzinfo=UTC)  # 01:30 on 2 March in Hồ Chí Minh City
    source = {"text": "{{ order.total|vnd }} · {{ order.placed_at|date }} · {{ order.placed_at|datetime }}"}
    variables = {"order": {"total": 1250000, "placed_at": placed}, "timezone": "Asia/Ho_Chi_Minh"}
    assert render(source, variables).text == "1.250.000\xa0₫ · 02/03/2025 · 01:30 02/03/2025"
    en = render(source, variables, locale="en").text
    assert en.startswith("₫1,250,000 · Mar 2, 2025 · Mar 2, 2025")
    assert render({"text": "{{ '2025-03-01T18:30:00Z'|date }}"}, {"timezone": "Asia/Ho_Chi_Minh"}).text == "02/03/2025"


def test_an_undefined_variable_is_an_error_naming_it_not_an_empty_hole():
    with pytest.raises(RenderError, match="'order' is undefined"):
        render({"text": "Đơn {{ order.id }}"}, {"customer": {}})
    with pytest.raises(RenderError, match="has no attribute 'points'"):
        render({"text": "{{ customer.points }}"}, {"customer": {"name": "An"}})


def test_the_sandbox_refuses_python_internals():
    with pytest.raises(RenderError, match="not allowed|unsafe|SecurityError"):
        render({"text": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}, {})


def test_html_is_escaped_and_text_is_not():
    out = render({"text": "{{ customer.name }}", "html": "<p>{{ customer.name }}</p>"},
                 {"customer": {"name": "<b>An</b> & Bình"}})
    assert out.text == "<b>An</b> & Bình"
    assert out.html == "<p>&lt;b&gt;An&lt;/b&gt; &amp; Bình</p>"


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=40))
def test_whatever_a_customer_is_called_html_output_never_contains_their_raw_markup(name):
    out = render({"text": "x", "html": "<p>{{ customer.name }}</p>"}, {"customer": {"name": name}})
    assert "<" not in out.html[3:-4] and ">" not in out.html[3:-4]


def test_a_syntax_error_is_refused_when_saving_with_the_field_and_line(db):
    with pytest.raises(FieldError) as error:
        create_template(db, key="bad", channel="sms", variants={"vi": {"text": "Xin chào\n{{ customer.name }"}})
    assert error.value.field == "variants.vi.text"
    assert "line 2" in error.value.message


@pytest.mark.parametrize("key,channel,variants,field", [
    ("Bad Key", "sms", {"vi": {"text": "x"}}, "key"),
    ("ok", "fax", {"vi": {"text": "x"}}, "channel"),
    ("ok", "sms", {}, "variants"),
    ("ok", "sms", {"fr": {"text": "x"}}, "variants.fr"),
    ("ok", "email", {"vi": {"text": "x"}}, "variants.subject"),
    ("ok", "sms", {"vi": {"text": "x", "colour": "red"}}, "variants.vi.colour"),
])
def test_bad_templates_are_refused_naming_the_field(db, key, channel, variants, field):
    with pytest.raises(FieldError) as error:
        create_template(db, key=key, channel=channel, variants=variants)
    assert error.value.field == field


def test_editing_makes_a_new_version_and_the_old_one_stays_as_it_was(db):
    create_template(db, key="promo", channel="sms", variants={"vi": {"text": "v1"}})
    update_template(db, "promo", variants={"vi": {"text": "v2"}, "en": {"text": "v2 en"}})
    template, current = get_version(db, "promo")
    assert (template.current_version, current.variants["vi"]["text"]) == (2, "v2")
    assert get_version(db, "promo", 1)[1].variants == {"vi": {"text": "v1"}}
    assert [v.version for v in versions_of(db, "promo")] == [2, 1]


def test_the_variant_follows_the_customers_language_and_falls_back_to_the_default(db, make_customer):
    create_template(db, key="hi", channel="sms", variants={"vi": {"text": "Chào {{ customer.given_name }}"},
                                                          "en": {"text": "Hi {{ customer.given_name }}"}})
    english = make_customer(traits={"locale": "en-US"})
    plain = make_customer()
    assert preview(db, "hi", english.id).text == "Hi An"
    assert preview(db, "hi", plain.id).text == "Chào An"
    assert preview(db, "hi", plain.id, locale="en").text == "Hi An"


def test_a_preview_uses_the_chosen_customers_orders(db, make_customer):
    from clm.commerce.models import Order

    customer = make_customer(full_name="Trần Thị Bình", given_name="Bình")
    db.add(Order(external_id="DH-1", customer_id=customer.id, status="completed", currency="VND", total=350000,
                 placed_at=datetime(2025, 3, 1, 3, 0, tzinfo=UTC)))
    db.flush()
    create_template(db, key="thanks", channel="sms",
                    variants={"vi": {"text": "Cảm ơn {{ customer.name }}: đơn {{ order.id }}, {{ order.total|vnd }}"}})
    out = preview(db, "thanks", customer.id, context={"order_id": "DH-1"})
    assert out.text == "Cảm ơn Trần Thị Bình: đơn DH-1, 350.000\xa0₫"
    with pytest.raises(RenderError, match="'order' is undefined"):
        preview(db, "thanks", customer.id)


def test_zns_templates_render_their_data_mapping(db, make_customer):
    customer = make_customer(phone="+84912345678")
    create_template(db, key="zns", channel="zalo", variants={"vi": {"text": ""}},
                    provider={"zns_template_id": "231", "template_data": {"name": "{{ customer.name }}",
                                                                           "day": "{{ context.day|date }}"}})
    out = preview(db, "zns", customer.id, context={"day": date(2025, 3, 8).isoformat()})
    assert out.data == {"template_id": "231", "template_data": {"name": "Nguyễn Văn An", "day": "08/03/2025"}}
