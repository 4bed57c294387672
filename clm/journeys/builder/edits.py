"""The builder's structural edits of a draft.

`act` applies the edit the form asks for: a node added on an edge (`add.<edge>` names the type; the edge
is `start` or `<i>.<successor key>`), removed (its place is taken by what followed it), moved up or down
a straight chain, a split's branch added or removed, an edit of a condition's rule tree, or a property
filter added to or removed from the trigger, the goal or a wait for an event (`filters`).
"""

from __future__ import annotations

from typing import Any

from clm.journeys.builder import filters
from clm.journeys.builder.draft import (
    ADDABLE,
    SHORT,
    blank_node,
    get_target,
    index_of,
    posted_value,
    set_target,
    successor_keys,
)
from clm.segments import builder as rules_form


def new_id(draft: dict[str, Any], kind: str) -> str:
    taken = {n["id"] for n in draft["nodes"]}
    k = 1
    while f"{SHORT[kind]}{k}" in taken:
        k += 1
    return f"{SHORT[kind]}{k}"


def reachable(draft: dict[str, Any]) -> set[str]:
    index, seen, todo = index_of(draft), set(), [draft["start"]]
    while todo:
        node_id = todo.pop()
        if node_id in seen or node_id not in index:
            continue
        seen.add(node_id)
        node = draft["nodes"][index[node_id]]
        todo.extend(get_target(node, key) for key in successor_keys(node))
        todo.extend(node.get("_old", ()))  # a node whose type just changed: where it led before
    return seen


def _prune(draft: dict[str, Any], before: set[str]) -> None:
    """Drop the nodes an edit cut off (reachable before it, not after); others stay as they were."""
    after = reachable(draft)
    draft["nodes"] = [n for n in draft["nodes"] if n["id"] in after or n["id"] not in before]


def _refs(draft: dict[str, Any], target: str) -> list[tuple[dict[str, Any], str]]:
    return [(n, key) for n in draft["nodes"] for key in successor_keys(n) if get_target(n, key) == target]


def _new_exit(draft: dict[str, Any]) -> str:
    node = blank_node("exit", new_id(draft, "exit"))
    draft["nodes"].append(node)
    return node["id"]


def settle_types(draft: dict[str, Any]) -> None:
    """A node whose type changed keeps its first way out; its other ways out lead to new exits, and
    what only its old other branches reached goes."""
    before = reachable(draft)
    for node in list(draft["nodes"]):
        old = node.pop("_old", None)
        if old is None:
            continue
        for k, key in enumerate(successor_keys(node)):
            set_target(node, key, (old[0] if old else "") if k == 0 else _new_exit(draft))
    _prune(draft, before)


def insert(draft: dict[str, Any], edge: str, kind: str) -> str | None:
    """Put a new node of `kind` on `edge` ("start" or "<i>.<key>"): it leads on to the edge's old target;
    its other ways out lead to new exits. Returns the new node's id."""
    if kind not in ADDABLE:
        return None
    if edge == "start":
        source, key, target = None, None, draft["start"]
    else:
        head, _, key = edge.partition(".")
        if not head.isdigit() or int(head) >= len(draft["nodes"]):
            return None
        source = draft["nodes"][int(head)]
        if key not in successor_keys(source):
            return None
        target = get_target(source, key)
    node = blank_node(kind, new_id(draft, kind))
    keys = successor_keys(node)
    at = draft["nodes"].index(source) + 1 if source is not None else 0
    draft["nodes"].insert(at, node)
    for k, way in enumerate(keys):
        set_target(node, way, target if k == 0 else _new_exit(draft))
    if source is None:
        draft["start"] = node["id"]
    else:
        set_target(source, key, node["id"])
    return node["id"]


def remove(draft: dict[str, Any], i: int) -> None:
    """Remove node i (not an exit): whatever led to it leads to what followed it; its other branches go."""
    if i >= len(draft["nodes"]) or draft["nodes"][i]["type"] == "exit":
        return
    before = reachable(draft)
    node = draft["nodes"].pop(i)
    keys = successor_keys(node)
    primary = get_target(node, keys[0]) if keys else ""
    for other, key in _refs(draft, node["id"]):
        set_target(other, key, primary)
    if draft["start"] == node["id"]:
        draft["start"] = primary
    _prune(draft, before)


def _linear(node: dict[str, Any]) -> bool:
    return successor_keys(node) == ["next"]


def can_move_up(draft: dict[str, Any], i: int) -> bool:
    node = draft["nodes"][i]
    refs = _refs(draft, node["id"])
    if not _linear(node) or len(refs) != 1 or draft["start"] == node["id"]:
        return False
    pred, key = refs[0]
    return pred is not node and _linear(pred) and key == "next" and node["next"] != pred["id"]


def move_up(draft: dict[str, Any], i: int) -> None:
    """Swap node i with the node before it on a straight chain (... -> P -> X -> ... becomes ... -> X -> P -> ...)."""
    if i >= len(draft["nodes"]) or not can_move_up(draft, i):
        return
    node = draft["nodes"][i]
    pred = _refs(draft, node["id"])[0][0]
    for other, key in _refs(draft, pred["id"]):
        set_target(other, key, node["id"])
    if draft["start"] == pred["id"]:
        draft["start"] = node["id"]
    pred["next"], node["next"] = node["next"], pred["id"]


def can_move_down(draft: dict[str, Any], i: int) -> bool:
    node = draft["nodes"][i]
    index = index_of(draft)
    return _linear(node) and node["next"] in index and can_move_up(draft, index[node["next"]])


def move_down(draft: dict[str, Any], i: int) -> None:
    if i < len(draft["nodes"]) and can_move_down(draft, i):
        move_up(draft, index_of(draft)[draft["nodes"][i]["next"]])


def add_branch(draft: dict[str, Any], i: int) -> None:
    node = draft["nodes"][i] if i < len(draft["nodes"]) else None
    if node is None or node["type"] != "random_split" or len(node["branches"]) >= 10:
        return
    names = {b["name"] for b in node["branches"]}
    name = next(c for c in ("ABCDEFGHIJK") if c not in names)
    node["branches"].append({"name": name, "weight": "10", "control": False, "next": _new_exit(draft)})


def remove_branch(draft: dict[str, Any], i: int, k: int) -> None:
    node = draft["nodes"][i] if i < len(draft["nodes"]) else None
    if node is None or node["type"] != "random_split" or len(node["branches"]) <= 2 or k >= len(node["branches"]):
        return
    before = reachable(draft)
    node["branches"].pop(k)
    _prune(draft, before)


def act(draft: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Apply the edit the form asks for (an `add.<edge>` select set to a type, or the `action` button)."""
    for key in list(data):
        if key.startswith("add.") and posted_value(data, key) in ADDABLE:
            insert(draft, key[4:], posted_value(data, key))
            return draft
    verb, _, arg = posted_value(data, "action").partition(":")
    parts = arg.split(".")
    if arg.startswith("n.") and len(parts) > 2 and parts[1].isdigit() and parts[2] == "r":
        i = int(parts[1])  # an edit of a condition's rule tree: the segment builder's own actions
        if i < len(draft["nodes"]) and draft["nodes"][i]["type"] == "condition":
            prefix = f"n.{i}."
            draft["nodes"][i]["tree"] = rules_form.act(draft["nodes"][i]["tree"], f"{verb}:{arg[len(prefix):]}")
        return draft
    if filters.edit(draft, verb, arg):
        return draft
    if not all(p.isdigit() for p in parts) or not arg:
        return draft
    numbers = [int(p) for p in parts]
    if verb == "drop":
        remove(draft, numbers[0])
    elif verb == "up":
        move_up(draft, numbers[0])
    elif verb == "down":
        move_down(draft, numbers[0])
    elif verb == "branch":
        add_branch(draft, numbers[0])
    elif verb == "unbranch" and len(numbers) == 2:
        remove_branch(draft, *numbers)
    return draft

