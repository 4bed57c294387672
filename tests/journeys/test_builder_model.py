"""The builder's form model without a browser: a saved definition survives the form unchanged (every playbook
journey and the documented example), and any sequence of edits keeps the graph whole."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clm.journeys.builder import convert
from clm.journeys.builder import draft as drafts
from clm.journeys.builder import edits as editing
from clm.journeys.builder import layout as layouts
from clm.journeys.definition import dump_definition, parse_definition
from clm.journeys.playbook import plays
from clm.journeys.validate import graph_problems

DOCUMENTED = {
    "trigger": {"type": "event", "event": "Cart Abandoned", "where": [{"property": "value", "op": "gte", "value": 500000}]},
    "entry": {"reentry": "after_days", "reentry_days": 14},
    "goal": {"event": "Order Completed", "within_days": 7},
    "start": "wait",
    "nodes": [
        {"id": "wait", "type": "wait", "duration": {"hours": 2}, "next": "remind"},
        {"id": "remind", "type": "send_message", "channel": "zalo", "template": "cart-reminder", "next": "ab"},
        {"id": "ab", "type": "random_split", "branches": [
            {"name": "coupon", "weight": 45, "next": "later"}, {"name": "plain", "weight": 45, "next": "end"},
            {"name": "control", "weight": 10, "control": True, "next": "end"}]},
        {"id": "later", "type": "wait_for_event", "event": "Order Completed", "timeout": {"days": 2},
         "next": "end", "timeout_next": "coupon"},
        {"id": "coupon", "type": "send_message", "channel": "email", "template": "cart-coupon", "next": "end"},
        {"id": "at", "type": "wait_until", "time": "08:30", "weekdays": [5, 6], "next": "end", "label": "sáng cuối tuần"},
        {"id": "end", "type": "exit"}],
}


def through_the_form(definition: dict) -> dict:
    data, problems = convert.to_definition(convert.from_definition(definition))
    assert problems == []
    return dump_definition(parse_definition(data))


@pytest.mark.parametrize("play", plays(), ids=lambda p: p.key)
def test_every_playbook_journey_survives_the_builder_unchanged(play):
    saved = dump_definition(parse_definition(play.definition))
    assert through_the_form(saved) == saved


def test_the_documented_example_survives_the_builder_unchanged():
    saved = dump_definition(parse_definition(DOCUMENTED))
    assert through_the_form(saved) == saved


@pytest.mark.parametrize("trigger", [
    {"type": "days_after_last_order", "gaps": 1.5}, {"type": "days_after_last_order", "days": 30},
    {"type": "date", "field": "traits.anniversary", "offset_days": -3, "every_year": False},
    {"type": "stage_changed", "to": "loyalty"}, {"type": "segment_entered", "segment_id": 4},
])
def test_each_trigger_survives_the_builder_unchanged(trigger):
    saved = dump_definition(parse_definition({"trigger": trigger, "start": "end", "nodes": [{"id": "end", "type": "exit"}]}))
    assert through_the_form(saved) == saved


def test_a_trait_value_typed_as_a_number_must_be_one():
    draft = drafts.blank()
    editing.insert(draft, "start", "update_trait")
    draft["nodes"][0].update(trait="tier", vtype="number", value="gold")
    _, problems = convert.to_definition(draft)
    assert [(p.field, p.node) for p in problems] == [("definition.nodes[0].value", "trait1")]


EDITS = st.lists(st.tuples(st.sampled_from(["insert", "remove", "up", "down", "branch", "unbranch"]),
                           st.integers(0, 30), st.integers(0, 30), st.sampled_from(drafts.ADDABLE)), max_size=25)


@settings(max_examples=150, deadline=None)
@given(EDITS)
def test_any_sequence_of_edits_keeps_every_node_reachable_and_every_way_out_pointing_at_a_node(edits):
    draft = drafts.blank()
    draft["trigger"]["event"] = "Signed Up"
    for verb, a, b, kind in edits:
        nodes = draft["nodes"]
        if verb == "insert":
            edges = ["start"] + [f"{i}.{k}" for i, n in enumerate(nodes) for k in drafts.successor_keys(n)]
            editing.insert(draft, edges[a % len(edges)], kind)
        elif verb == "remove":
            editing.remove(draft, a % len(nodes))
        elif verb == "up":
            editing.move_up(draft, a % len(nodes))
        elif verb == "down":
            editing.move_down(draft, a % len(nodes))
        elif verb == "branch":
            editing.add_branch(draft, a % len(nodes))
        else:
            editing.remove_branch(draft, a % len(nodes), b % 10)
    ids = [n["id"] for n in draft["nodes"]]
    assert len(ids) == len(set(ids))
    assert all(drafts.get_target(n, k) in ids for n in draft["nodes"] for k in drafts.successor_keys(n))
    assert editing.reachable(draft) == set(ids)
    layout = layouts.layout(draft)
    assert layout["orphans"] == []
    for node in draft["nodes"]:  # what a marketer fills in on each new step
        node.update({k: v for k, v in {"trait": "tier", "stage": "loyalty", "segment_id": "1", "owner_ids": ["1"],
                                       "template": "welcome"}.items() if k in node})
    data, problems = convert.to_definition(draft)
    assert problems == []
    assert graph_problems(parse_definition(data)) == []
