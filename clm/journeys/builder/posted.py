"""The posted builder form as a draft (every input named by place, see `draft`)."""

from __future__ import annotations

import re
from typing import Any

from clm.journeys.builder import filters
from clm.journeys.builder.draft import (
    DATE_FIELDS,
    NODE_TYPES,
    REENTRY,
    TRIGGER_TYPES,
    blank,
    blank_node,
    get_target,
    posted_value,
    set_target,
    successor_keys,
)
from clm.journeys.builder.edits import settle_types
from clm.journeys.definition import NODE_ID
from clm.segments import builder as rules_form

_NODE = re.compile(r"^n\.(\d+)\.id$")
_BRANCH = re.compile(r"^n\.(\d+)\.b\.(\d+)\.name$")


def _list(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key, [])
    return [v for v in (value if isinstance(value, list) else [value]) if v != ""]


def from_form(data: dict[str, Any]) -> dict[str, Any]:
    draft = blank()
    t = draft["trigger"]
    t["type"] = posted_value(data, "t.type", "event") if posted_value(data, "t.type") in TRIGGER_TYPES else "event"
    for key in ("event", "segment_id", "to", "from", "field", "trait", "offset_days", "days", "gaps"):
        t[key] = posted_value(data, f"t.{key}", t.get(key, ""))
    t["field"] = t["field"] if t["field"] in DATE_FIELDS else "birthday"
    t["every_year"] = bool(posted_value(data, "t.every_year"))
    e = draft["entry"]
    e["reentry"] = posted_value(data, "e.reentry", "never") if posted_value(data, "e.reentry") in REENTRY else "never"
    e["reentry_days"] = posted_value(data, "e.reentry_days")
    e["exit_on_segment_exit"] = bool(posted_value(data, "e.exit_on_segment_exit"))
    g = draft["goal"]
    g["on"] = bool(posted_value(data, "g.on"))
    for key in ("event", "within_days"):
        g[key] = posted_value(data, f"g.{key}", g[key])
    t["where"], g["where"] = filters.from_form(data, "t"), filters.from_form(data, "g")
    draft["start"] = posted_value(data, "start").strip()
    found = sorted({int(m[1]) for key in data if (m := _NODE.match(key))})
    draft["nodes"] = [_node_from_form(data, i) for i in found]
    for i, node in zip(found, draft["nodes"], strict=True):
        rename(draft, node, posted_value(data, f"n.{i}.rename", node["id"]).strip())
    settle_types(draft)
    return draft


def rename(draft: dict[str, Any], node: dict[str, Any], new: str) -> None:
    """Give `node` the id `new`, and every way that led to it (the start, other nodes' ways out) with it. An
    id that is not 1-64 letters, digits, '_' or '-', or that another node has, is refused: the node keeps
    its id and carries `rename_error` ("invalid" or "taken") for the page to say so."""
    old = node["id"]
    if new == old:
        return
    if not NODE_ID.match(new):
        node["rename_error"] = "invalid"
        return
    if any(n["id"] == new for n in draft["nodes"]):
        node["rename_error"] = "taken"
        return
    node["id"] = new
    if draft["start"] == old:
        draft["start"] = new
    for other in draft["nodes"]:
        for key in successor_keys(other):
            if get_target(other, key) == old:
                set_target(other, key, new)
        if "_old" in other:
            other["_old"] = [new if target == old else target for target in other["_old"]]


def _node_from_form(data: dict[str, Any], i: int) -> dict[str, Any]:
    p = f"n.{i}"
    kind = posted_value(data, f"{p}.type", "exit")
    kind = kind if kind in NODE_TYPES else "exit"
    previous = posted_value(data, f"{p}.previous_type", kind)
    node = blank_node(kind, posted_value(data, f"{p}.id").strip())
    node["label"] = posted_value(data, f"{p}.label")
    if previous != kind:  # a new type starts from its defaults and keeps where the node went on to
        old = {"type": previous if previous in NODE_TYPES else "exit", "branches": [{}] * _branch_count(data, i)}
        targets = [posted_value(data, f"{p}.{key}.next" if key.startswith("b.") else f"{p}.{key}") for key in successor_keys(old)]
        node["_old"] = targets
        return node
    for key in ("days", "hours", "minutes", "time", "event", "channel", "template", "purpose", "trait",
                "value", "vtype", "stage", "segment_id", "reward_id"):
        if key in node:
            node[key] = posted_value(data, f"{p}.{key}", node[key])
    if "weekdays" in node:
        node["weekdays"] = _list(data, f"{p}.weekdays")
    if "owner_ids" in node:
        node["owner_ids"] = _list(data, f"{p}.owner_ids")
    if kind == "condition":
        node["tree"] = rules_form.from_form(data, f"{p}.r")
    if kind == "wait_for_event":
        node["where"] = filters.from_form(data, p)
    if kind == "random_split":
        node["branches"] = [{"name": posted_value(data, f"{p}.b.{k}.name"), "weight": posted_value(data, f"{p}.b.{k}.weight"),
                             "control": bool(posted_value(data, f"{p}.b.{k}.control")),
                             "next": posted_value(data, f"{p}.b.{k}.next")} for k in range(_branch_count(data, i))]
    for key in successor_keys(node):
        if not key.startswith("b."):
            node[key] = posted_value(data, f"{p}.{key}")
    return node


def _branch_count(data: dict[str, Any], i: int) -> int:
    return len({m[2] for key in data if (m := _BRANCH.match(key)) and int(m[1]) == i})

