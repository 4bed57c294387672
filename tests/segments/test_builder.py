"""The builder's form and the rule tree, both ways: every condition kind survives being shown in the
builder and posted back (the Python mapping with hypothesis; the real page with an HTML form parser)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings

from clm.lib.errors import FieldError
from clm.segments import builder, service
from clm.segments.rules import dump_rules, parse_rules
from tests.dashboard.conftest import as_role, browser, cheap_hashing, token_of, user_factory  # noqa: F401
from tests.segments import trees


def _normal(data):
    """The tree as stored, at the top a group (the builder's root), stages in a set's order (checkboxes)."""
    node = _sorted_stages(dump_rules(parse_rules(data)))
    return node if any(k in node for k in ("all", "any", "not")) else {"all": [node]}


def _sorted_stages(node):
    if isinstance(node, list):
        return [_sorted_stages(x) for x in node]
    if isinstance(node, dict):
        return {k: sorted(v) if k == "stages" else _sorted_stages(v) for k, v in node.items()}
    return node


def _as_form(node: dict, path: str = "r") -> dict:
    """The fields the builder page posts for a form tree (what the template names; checked by the page test)."""
    out = {f"{path}.kind": node["kind"]}
    if node["kind"] == "group":
        out[f"{path}.mode"] = node["mode"]
        for i, child in enumerate(node["children"]):
            out.update(_as_form(child, f"{path}.{i}"))
        return out
    out[f"{path}.previous_type"] = node["type"]
    for key in ("type", *builder._TEXT_KEYS):
        out[f"{path}.{key}"] = node[key]
    out[f"{path}.stages"] = node["stages"]
    for i, f in enumerate(node["where"]):
        out.update({f"{path}.where.{i}.{k}": v for k, v in f.items()})
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees.trees(static_id=3, dynamic_id=4))
def test_every_rule_tree_comes_back_unchanged_from_the_builders_form(tree):
    form_tree = builder.from_form(_as_form(builder.from_rules(dump_rules(parse_rules(tree)))))
    assert _normal(builder.to_rules(form_tree)) == _normal(tree)


def test_a_trait_compared_as_a_number_refuses_text_naming_its_path():
    tree = builder.from_rules({"all": [{"type": "stage", "stages": ["retention"]},
                                       {"type": "profile", "field": "traits.age", "op": "gt", "value": 30}]})
    tree["children"][1]["value"] = "thirty"
    with pytest.raises(FieldError) as err:
        builder.to_rules(tree)
    assert err.value.field == "rules.all[1].value"


def test_property_filters_are_added_and_removed_by_their_buttons():
    tree = builder.from_rules({"type": "event", "name": "Product Viewed", "count": 2, "window": {"last_days": 7}})
    builder.act(tree, "where:r.0")
    builder.act(tree, "where:r.0")
    assert len(tree["children"][0]["where"]) == 2
    builder.act(tree, "unwhere:r.0.where.0")
    builder.act(tree, "unwhere:r.0.where.9")  # not there: nothing happens
    assert len(tree["children"][0]["where"]) == 1


class _Form(HTMLParser):
    """The values a browser would post for the first form on a page (inputs, checked boxes, selections)."""

    def __init__(self):
        super().__init__()
        self.data: dict[str, list[str]] = {}
        self._select: str | None = None
        self._first: str | None = None
        self._chosen = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("name"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.data.setdefault(a["name"], []).append(a.get("value") or "")
        elif tag == "select":
            self._select, self._first, self._chosen = a.get("name"), None, False
        elif tag == "option" and self._select:
            if self._first is None:
                self._first = a.get("value")
            if "selected" in a:
                self.data.setdefault(self._select, []).append(a.get("value"))
                self._chosen = True

    def handle_endtag(self, tag):
        if tag == "select" and self._select:
            if not self._chosen and self._first is not None:
                self.data.setdefault(self._select, []).append(self._first)
            self._select = None


def _posted(html: str) -> dict:
    form = _Form()
    form.feed(html)
    return {k: v if len(v) > 1 or k.endswith(".stages") else v[0] for k, v in form.data.items()}


EVERY_KIND = {"all": [
    {"type": "profile", "field": "city", "op": "in", "value": ["Hà Nội", "O'Brien \"x\""]},
    {"type": "profile", "field": "traits.skin type", "op": "eq", "value": "dầu"},
    {"type": "profile", "field": "traits.age", "op": "between", "value": [18, 30.5]},
    {"type": "profile", "field": "traits.vip", "op": "is_true"},
    {"type": "profile", "field": "birthday", "op": "anniversary_within_days", "value": 7},
    {"type": "stage", "op": "not_in", "stages": ["churned", "at_risk"]},
    {"type": "stage_entered", "stage": "loyalty", "within_days": 14},
    {"any": [
        {"type": "event", "name": "Product Viewed", "op": "at_least", "count": 2, "window": {"last_days": 30},
         "where": [{"property": "category", "op": "eq", "value": "50%_off"},
                   {"property": "price", "op": "gte", "value": 100000}]},
        {"type": "event", "name": "Order Completed", "op": "exactly", "count": 0,
         "window": {"since": "2025-01-01", "until": "2025-03-31"}},
    ]},
    {"type": "orders", "metric": "revenue", "op": "gte", "value": 500000},
    {"type": "bought", "category": "skincare", "window": {"last_days": 90}},
    {"not": {"type": "bought", "sku": "SKU-1"}},
    {"type": "score", "field": "rfm_segment", "op": "in", "value": ["champions", "loyal"]},
    {"type": "score", "field": "p_alive", "op": "lt", "value": 0.5},
    {"type": "consent", "channel": "zalo", "purpose": "marketing"},
    {"type": "segment", "segment_id": "REF"},
]}


def test_a_segment_of_every_condition_kind_opens_in_the_builder_and_saves_unchanged(db, as_role):  # noqa: F811
    ref = service.save_segment(db, name="VIP list", kind="static")
    rules = {"all": [*EVERY_KIND["all"][:-1], {"type": "segment", "segment_id": ref.id}]}
    segment = service.save_segment(db, name="Every kind", rules=rules)
    db.commit()
    client = as_role("marketer")
    page = client.get(f"/segments/{segment.id}/edit")
    assert page.status_code == 200 and "Kept as it is" not in page.text  # nothing is left uneditable
    form = _posted(page.text)
    assert form["segment_id"] == str(segment.id)
    counted = client.post("/segments/builder/count", data={**form, "csrf_token": token_of(client)})
    assert 'id="rules-error"' not in counted.text and 'id="count"' in counted.text
    saved = client.post(f"/segments/{segment.id}/edit", data={**form, "csrf_token": token_of(client)},
                        follow_redirects=False)
    assert saved.status_code == 303
    db.expire_all()
    assert _normal(service.get_segment(db, segment.id).rules) == _normal(rules)
