"""A business edits the rule file: its stages, names and thresholds drive behaviour; mistakes are named."""

from __future__ import annotations

import pytest

from clm.lib.errors import FieldError
from clm.lifecycle.metrics import stage_counts, stage_names
from clm.lifecycle.rules import current_rules, load_rules, parse_rules
from tests.lifecycle.life import Life

SPA_RULES = """
[settings]
default_gap_days = 45
min_gap_days = 14

[[stages]]
key = "lead"
name = { vi = "Khách tiềm năng", en = "Lead" }
funnel = true

[[stages]]
key = "client"
name = { vi = "Khách hàng", en = "Client" }
funnel = true

[[stages]]
key = "vip"
name = { vi = "Khách VIP" }
funnel = true

[[stages]]
key = "lost"
name = { vi = "Đã mất", en = "Lost" }

[[rules]]
name = "gone-quiet"
stage = "lost"
when = { orders_count = ">= 1", days_since_last_order = "> 90" }

[[rules]]
name = "big-spender"
stage = "vip"
when = { revenue = ">= 5000000" }

[[rules]]
name = "booked"
stage = "client"
when = { orders_count = ">= 1" }

[[rules]]
name = "anyone"
stage = "lead"
"""


@pytest.fixture
def spa(db) -> Life:
    return Life(db, parse_rules(SPA_RULES))


def test_a_business_rule_file_renames_the_stages_and_sets_its_own_thresholds(spa):
    spa.identify("lan", 0)
    spa.order("lan", 0, total=3_000_000)
    spa.react(0)
    assert spa.stage("lan") == "client"
    spa.order("lan", 30, total=2_500_000)
    spa.react(30)
    assert spa.moves("lan")[-1] == ("client", "vip", "big-spender")
    spa.sweep(30 + 90)
    assert spa.stage("lan") == "vip"
    spa.sweep(30 + 91)
    assert spa.moves("lan")[-1] == ("vip", "lost", "gone-quiet")


def test_counts_and_names_follow_the_business_stages(spa, db):
    spa.identify("lan", 0)
    spa.react(0)
    rules = spa.rules
    assert stage_counts(db, rules) == {"lead": 1, "client": 0, "vip": 0, "lost": 0}
    assert stage_names("en", rules) == {"lead": "Lead", "client": "Client", "vip": "vip", "lost": "Lost"}
    assert stage_names("vi", rules)["vip"] == "Khách VIP"


def test_the_rule_file_named_by_the_setting_is_the_one_in_force(tmp_path, settings):
    path = tmp_path / "rules.toml"
    path.write_text(SPA_RULES, encoding="utf-8")
    assert current_rules(settings.model_copy(update={"lifecycle_rules": path})).keys == ["lead", "client", "vip", "lost"]
    assert current_rules(settings).keys[0] == "awareness"


def test_the_default_rule_file_is_valid_and_covers_the_issue_stages():
    rules = load_rules()
    assert rules.keys == ["awareness", "consideration", "conversion", "retention", "loyalty", "at_risk", "churned"]
    assert rules.funnel_stages == rules.keys[:5]


BASE = '[[stages]]\nkey = "a"\n[[stages]]\nkey = "b"\n'


@pytest.mark.parametrize("text,field,message", [
    (BASE + '[[rules]]\nname = "x"\nstage = "c"\n', "rules[0].stage", "unknown stage 'c'; the stages are a, b"),
    (BASE + '[[rules]]\nname = "x"\nstage = "a"\nfrom = ["z"]\n', "rules[0].from[0]", "unknown stage 'z'"),
    (BASE + '[[rules]]\nname = "x"\nstage = "a"\nwhen = { orders_count = "lots" }\n',
     "rules[0].when.orders_count", "'lots' is not a comparison"),
    (BASE + '[[rules]]\nname = "x"\nstage = "a"\nwhen = { order_count = 2 }\n',
     "rules[0].when.order_count", "is not a known key here"),
    (BASE + '[[rules]]\nname = "x"\nstage = "a"\nwhen = { revenue = "> 2 gaps" }\n',
     "rules[0].when.revenue", "only day counts"),
    (BASE + '[[rules]]\nname = "x"\nstage = "a"\nwhen = { events = { names = [] } }\n',
     "rules[0].when.events.names", "at least 1 item"),
    (BASE + '[[rules]]\nname = "x"\nstage = "a"\n[[rules]]\nname = "x"\nstage = "b"\n',
     "rules[1].name", "listed twice"),
    ('[[stages]]\nkey = "At Risk"\n[[rules]]\nname = "x"\nstage = "a"\n', "stages[0].key", "lower-case"),
    (BASE, "rules", "Field required"),
])
def test_a_bad_rule_file_is_refused_with_the_key_at_fault(text, field, message):
    with pytest.raises(FieldError) as caught:
        parse_rules(text)
    assert caught.value.field == field
    assert message in caught.value.message


def test_a_rule_file_that_is_not_toml_is_refused_saying_so():
    with pytest.raises(FieldError, match="not valid TOML"):
        parse_rules("[[stages]\nkey = 1")


def test_a_missing_rule_file_names_the_setting(tmp_path):
    with pytest.raises(FieldError) as caught:
        load_rules(tmp_path / "nope.toml")
    assert caught.value.field == "CLM_LIFECYCLE_RULES"
