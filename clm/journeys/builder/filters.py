"""Property filters (`where`) of an event trigger, a wait for an event and the goal, edited with the segment
builder's own filter controls (`clm.segments.builder`, `segments/_rules.html` macro `filters`).

A draft keeps them as the segment builder's filter form nodes. Their owners are named by form path: `t`
the trigger, `g` the goal, `n.<i>` node i; a filter is `<owner>.where.<k>`. The actions are the segment
builder's: `where:<owner>` adds one, `unwhere:<owner>.where.<k>` removes one.
"""

from __future__ import annotations

import re
from typing import Any

from clm.journeys.validate import Problem
from clm.lib.errors import FieldError
from clm.segments import builder as rules_form

MAX = 10  # as the definition allows
_NODE_OWNER = re.compile(r"^n\.(\d+)$")


def from_form(data: dict[str, Any], owner: str) -> list[dict[str, Any]]:
    return rules_form.filters_from_form(data, owner)


def from_json(where: Any) -> list[dict[str, Any]]:
    return rules_form.filters_from_rules(where or [])


def to_json(filters: list[dict[str, Any]], api: str, node: str | None, whose: str,
            problems: list[Problem]) -> list[dict[str, Any]]:
    """The filters' JSON, and a problem naming `whose` (the trigger, the goal, a node) and the filter for each
    filter without a property or with a value that is not of its type."""
    for k, f in enumerate(filters):
        if not f["property"].strip():
            problems.append(Problem(f"{api}[{k}].property", node, f"{whose}: property filter {k + 1}: name the property"))
    try:
        return rules_form.filters_to_rules(filters, api)
    except FieldError as exc:
        k = int(re.search(r"\[(\d+)\]", exc.field[len(api):]).group(1))
        problems.append(Problem(exc.field, node, f"{whose}: property filter {k + 1} "
                                                 f"({filters[k]['property'] or '?'}): {exc.message}"))
        return []


def owned(draft: dict[str, Any], owner: str) -> list[dict[str, Any]] | None:
    """The filter list of `owner` ("t", "g", "n.<i>"), or None when it has none (not an event trigger, not a
    wait for an event)."""
    if owner == "t":
        return draft["trigger"]["where"] if draft["trigger"]["type"] == "event" else None
    if owner == "g":
        return draft["goal"]["where"]
    if (m := _NODE_OWNER.match(owner)) and int(m[1]) < len(draft["nodes"]):
        node = draft["nodes"][int(m[1])]
        return node["where"] if node["type"] == "wait_for_event" else None
    return None


def edit(draft: dict[str, Any], verb: str, arg: str) -> bool:
    """Apply `where:<owner>` or `unwhere:<owner>.where.<k>`; False when the action is not one of these."""
    if verb == "where":
        filters = owned(draft, arg)
        if filters is not None and len(filters) < MAX:
            filters.append(rules_form.blank_filter())
        return filters is not None
    if verb == "unwhere":
        owner, _, k = arg.rpartition(".where.")
        filters = owned(draft, owner)
        if filters is not None and k.isdigit() and int(k) < len(filters):
            filters.pop(int(k))
        return filters is not None
    return False


def annotate(draft: dict[str, Any], path: str = "definition") -> None:
    """Form and API paths on every filter (as the filter controls and validation name them)."""
    rules_form.annotate_filters(draft["trigger"]["where"], "t", f"{path}.trigger.where")
    rules_form.annotate_filters(draft["goal"]["where"], "g", f"{path}.goal.where")
    for i, node in enumerate(draft["nodes"]):
        if node["type"] == "wait_for_event":
            rules_form.annotate_filters(node["where"], f"n.{i}", f"{path}.nodes[{i}].where")
