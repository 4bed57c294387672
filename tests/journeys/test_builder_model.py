"""The builder's form model without a browser: a saved definition survives the form unchanged (every playbook
journey and the documented example), and any sequence of edits keeps the graph whole."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clm.journeys.builder import convert, posted
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
                                       "template": "welcome", "reward_id": "1"}.items() if k in node})
    data, problems = convert.to_definition(draft)
    assert problems == []
    assert graph_problems(parse_definition(data)) == []


FILTERED = {
    "trigger": {"type": "event", "event": "Cart Abandoned", "where": [
        {"property": "value", "op": "gte", "value": 500000}, {"property": "channel", "op": "in", "value": ["web", "app"]}]},
    "goal": {"event": "Order Completed", "within_days": 7, "where": [{"property": "coupon", "op": "exists"}]},
    "start": "later",
    "nodes": [{"id": "later", "type": "wait_for_event", "event": "Order Completed", "timeout": {"days": 2},
               "where": [{"property": "paid", "op": "is_true"}], "next": "end", "timeout_next": "end"},
              {"id": "end", "type": "exit"}],
}


def posted_form(draft: dict) -> dict:
    """The builder's form fields for a draft, as the page posts them (filters as the segment controls name them)."""
    layouts.annotate_rules(draft)
    data = {"start": draft["start"], "t.type": draft["trigger"]["type"], "t.event": draft["trigger"]["event"],
            "e.reentry": "never", "g.on": "1" if draft["goal"]["on"] else "", "g.event": draft["goal"]["event"],
            "g.within_days": draft["goal"]["within_days"]}
    owners = [draft["trigger"]["where"], draft["goal"]["where"]] + [n.get("where", []) for n in draft["nodes"]]
    for where in owners:
        for f in where:
            data.update({f"{f['path']}.{k}": f[k] for k in ("property", "jtype", "op", "value")})
    for i, n in enumerate(draft["nodes"]):
        for key, value in n.items():
            if isinstance(value, str) or key in ("weekdays", "owner_ids"):
                data[f"n.{i}.{key}"] = value
        for k, b in enumerate(n.get("branches", [])):
            data.update({f"n.{i}.b.{k}.name": b["name"], f"n.{i}.b.{k}.weight": b["weight"],
                         f"n.{i}.b.{k}.control": "1" if b["control"] else "", f"n.{i}.b.{k}.next": b["next"]})
    return data


def test_property_filters_of_the_trigger_goal_and_a_wait_for_an_event_survive_the_posted_form():
    saved = dump_definition(parse_definition(FILTERED))
    data, problems = convert.to_definition(posted.from_form(posted_form(convert.from_definition(saved))))
    assert problems == [] and dump_definition(parse_definition(data)) == saved


def test_adding_a_filter_to_each_owner_and_removing_one_through_the_form_actions():
    draft = convert.from_definition(FILTERED)
    for owner in ("t", "g", "n.0"):
        editing.act(draft, {"action": f"where:{owner}"})
    assert [len(w) for w in (draft["trigger"]["where"], draft["goal"]["where"], draft["nodes"][0]["where"])] == [3, 2, 2]
    editing.act(draft, {"action": "unwhere:t.where.0"})
    assert [f["property"] for f in draft["trigger"]["where"]] == ["channel", ""]
    editing.act(draft, {"action": "where:n.1"})  # an exit has no filters: nothing changes
    assert "where" not in draft["nodes"][1]


def test_a_filter_without_its_property_or_with_a_wrong_number_names_the_node_and_the_filter():
    draft = convert.from_definition(FILTERED)
    editing.act(draft, {"action": "where:n.0"})
    draft["trigger"]["where"][0]["value"] = "lots"
    _, problems = convert.to_definition(draft)
    by_field = {p.field: p for p in problems}
    assert set(by_field) == {"definition.nodes[0].where[1].property", "definition.trigger.where[0].value"}
    node_problem = by_field["definition.nodes[0].where[1].property"]
    assert node_problem.node == "later" and "node 'later' (wait_for_event): property filter 2" in node_problem.message
    assert by_field["definition.trigger.where[0].value"].message.startswith("the trigger: property filter 1 (value)")


def test_renaming_a_node_follows_every_way_that_led_to_it_and_a_taken_or_bad_id_is_refused():
    draft = convert.from_definition(DOCUMENTED)
    data = posted_form(draft)
    index = {n["id"]: i for i, n in enumerate(draft["nodes"])}
    renamed = posted.from_form({**data, f"n.{index['coupon']}.rename": "coupon-2", f"n.{index['wait']}.rename": "first"})
    assert renamed["start"] == "first"
    definition, problems = convert.to_definition(renamed)
    assert problems == [] and parse_definition(definition).start == "first"
    nodes = {n["id"]: n for n in definition["nodes"]}
    assert nodes["first"]["next"] == "remind" and nodes["later"]["next"] == "end"
    assert nodes["later"]["timeout_next"] == "coupon-2" and "coupon" not in nodes
    clash = posted.from_form({**data, f"n.{index['coupon']}.rename": "end", f"n.{index['ab']}.rename": "a b"})
    assert [n["id"] for n in clash["nodes"]] == [n["id"] for n in draft["nodes"]]
    assert {n["id"]: n.get("rename_error") for n in clash["nodes"] if n.get("rename_error")} == {
        "coupon": "taken", "ab": "invalid"}
