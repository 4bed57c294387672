"""A journey graph is checked on save: each problem names its node and its path."""

from __future__ import annotations

import pytest

from clm.journeys import service
from clm.journeys.validate import check
from clm.lib.errors import FieldError
from tests.journeys.conftest import END, graph, trait, wait

GOOD = graph(wait("w", "t", days=1), trait("t", "vip", True), END)


@pytest.mark.parametrize(("definition", "field", "words"), [
    (graph(trait("t", "vip", True), END, {"id": "lost", "type": "exit"}), "definition.nodes[2]",
     "node 'lost' (exit) is unreachable"),
    (graph({"id": "c", "type": "condition", "rules": {"type": "stage", "stages": ["lead"]}, "yes": "end"}, END),
     "definition.nodes[0].no", "node 'c' (condition): missing branch"),
    (graph({"id": "w", "type": "wait", "next": "end"}, END), "definition.nodes[0].duration",
     "node 'w' (wait): a wait needs a duration"),
    (graph(wait("w", "end", minutes=0), END), "definition.nodes[0].duration", "a wait needs a duration"),
    (graph(trait("a", "x", 1, "b"), trait("b", "y", 2, "a")), "definition.nodes[0]",
     "node 'a' is on a cycle with no wait (a -> b -> a)"),
    (graph({"id": "s", "type": "send_message", "channel": "email", "next": "end"}, END),
     "definition.nodes[0].template", "node 's' (send_message): the action is missing its template"),
    (graph({"id": "h", "type": "webhook", "template": " ", "next": "end"}, END),
     "definition.nodes[0].template", "missing its template"),
    (graph({"id": "e", "type": "wait_for_event", "event": "Order Completed", "next": "end", "timeout_next": "end"},
           END), "definition.nodes[0].timeout", "needs a timeout"),
    (graph(trait("t", "x", 1, "nowhere"), END), "definition.nodes[0].next", "points to unknown node 'nowhere'"),
    (graph(wait("w", "end", days=1), END, start="nope"), "definition.start", "'nope' is not among the nodes"),
    (graph({"id": "w", "type": "wait", "duration": {"days": -1}, "next": "end"}, END),
     "definition.nodes[0].duration.days", "greater than or equal to 0"),
    (graph({"id": "x", "type": "teleport"}, END), "definition.nodes[0].type", "choose a node type"),
    (graph(END, trigger={"type": "event"}), "definition.trigger.event", "is required"),
])
def test_an_invalid_graph_is_refused_with_the_node_and_the_path(db, definition, field, words):
    with pytest.raises(FieldError) as caught:
        service.save_journey(db, name="Sai", definition=definition)
    assert caught.value.field == field
    assert words in caught.value.message


def test_a_cycle_through_a_wait_is_allowed(db):
    loop = graph(trait("nudge", "nudged", True, "later"), wait("later", "nudge", days=7))
    assert check(db, loop)[1] == []


def test_every_problem_is_listed_by_validate(db):
    bad = graph({"id": "w", "type": "wait", "next": "end"}, {"id": "s", "type": "send_message", "channel": "sms",
                                                               "next": "end"}, END)
    _, problems = check(db, bad)
    assert [(p.node, p.field) for p in problems] == [("w", "definition.nodes[0].duration"),
                                                     ("s", "definition.nodes[1].template")]


def test_references_are_checked_against_the_database(db):
    bad = graph({"id": "add", "type": "add_to_segment", "segment_id": 999, "next": "st"},
                {"id": "st", "type": "set_stage", "stage": "nirvana", "next": "end"}, END)
    _, problems = check(db, bad)
    assert [(p.field, p.node) for p in problems] == [("definition.nodes[0].segment_id", "add"),
                                                     ("definition.nodes[1].stage", "st")]
    assert "segment 999 does not exist" in problems[0].message and "'nirvana' is not a stage" in problems[1].message


def test_a_good_graph_saves_as_a_draft_at_version_one(db):
    journey = service.save_journey(db, name="Chào mừng", definition=GOOD)
    assert (journey.state, journey.version, journey.trigger_type) == ("draft", 1, "api")


def test_every_node_and_trigger_type_is_documented():
    from pathlib import Path

    from clm.journeys.definition import NODE_TYPES, TRIGGERS

    text = (Path(__file__).resolve().parents[2] / "docs" / "journeys.md").read_text(encoding="utf-8")
    missing = [t for t in (*NODE_TYPES, *TRIGGERS) if f"`{t}`" not in text]
    assert missing == []
