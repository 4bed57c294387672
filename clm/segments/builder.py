"""The builder page's form and the rule tree, both ways.

The builder edits a tree of form nodes: a group {"kind": "group", "mode": all|any|not, "children": [...]}
or a condition {"kind": "cond", "type": ..., "field", "op", "value" (as typed), ...}. Every input is named
by its node's path ("r", "r.0", "r.0.1") so the whole tree comes back with each HTMX post. A condition the
builder cannot edit (bought, stage entered, segment, event property filters) is kept as it is
({"kind": "raw"}) and can only be removed. `to_rules` gives the JSON rule tree the service validates;
`api_path` names each node as validation errors do ("rules.all[1]").
"""

from __future__ import annotations

import json
import re
from typing import Any

from clm.segments import rules as r

TYPES = ("profile", "stage", "event", "orders", "score", "consent")
MODES = ("all", "any", "not")
EVENT_OPS = ("at_least", "at_most", "exactly")
STAGE_OPS = ("in", "not_in")
NUMBER_METRICS = ("count", "revenue", "average_order_value")
NO_VALUE = ("exists", "not_exists", "is_true", "is_false")
_CHILD = re.compile(r"^(?P<parent>.+)\.(?P<i>\d+)\.kind$")


def blank(kind: str = "profile") -> dict[str, Any]:
    return {"kind": "cond", "type": kind, "field": {"profile": "city", "orders": "count", "score": "p_alive"}.get(
        kind, ""), "op": {"event": "at_least", "stage": "in"}.get(kind, "eq"), "value": "", "name": "",
        "count": "1", "days": "30", "stage": "retention", "channel": "zalo", "purpose": "marketing"}


def empty() -> dict[str, Any]:
    return {"kind": "group", "mode": "all", "children": [blank()]}


def field_kind(node: dict[str, Any]) -> str:
    """The value type of a profile, orders or score condition's field."""
    if node["type"] == "orders":
        return r.ORDER_METRICS.get(node["field"], "number")
    if node["type"] == "score":
        return r.SCORE_FIELDS.get(node["field"], "number")
    if node["field"] in r.DATE_FIELDS:
        return "date"
    return "datetime" if node["field"] in r.DATETIME_FIELDS else "string"


def fields_of(kind: str) -> tuple[str, ...]:
    return {"profile": r.PROFILE_FIELDS, "orders": NUMBER_METRICS + ("first_order_at", "last_order_at"),
            "score": tuple(r.SCORE_FIELDS)}.get(kind, ())


def ops_of(node: dict[str, Any]) -> tuple[str, ...]:
    if node["type"] == "event":
        return EVENT_OPS
    if node["type"] == "stage":
        return STAGE_OPS
    return r.OPS_BY_TYPE.get(field_kind(node), ())


# -- the posted form -> form nodes ---------------------------------------------------------------------------

def from_form(data: dict[str, Any], path: str = "r") -> dict[str, Any]:
    def get(key: str, default: str = "") -> str:
        value = data.get(f"{path}.{key}", default)
        return (value[0] if value else default) if isinstance(value, list) else str(value)

    kind = get("kind", "group")
    if kind == "group":
        found = sorted({int(m["i"]) for key in data if (m := _CHILD.match(key)) and m["parent"] == path})
        mode = get("mode", "all")
        return {"kind": "group", "mode": mode if mode in MODES else "all",
                "children": [from_form(data, f"{path}.{i}") for i in found]}
    if kind == "raw":
        return {"kind": "raw", "json": get("json", "{}")}
    node = blank(get("type", "profile") if get("type") in TYPES else "profile")
    if get("previous_type", node["type"]) == node["type"]:  # a new type starts from its defaults
        for key in ("field", "op", "value", "name", "count", "days", "stage", "channel", "purpose"):
            node[key] = get(key, node[key]).strip() if key != "value" else get(key, "")
    if node["type"] in ("profile", "orders", "score") and node["field"] not in fields_of(node["type"]):
        node["field"] = fields_of(node["type"])[0]
    if node["op"] not in ops_of(node):
        node["op"] = ops_of(node)[0]
    return node


def act(tree: dict[str, Any], action: str) -> dict[str, Any]:
    """add:<group path> (a condition), group:<group path> (a sub-group), remove:<path>."""
    verb, _, path = (action or "").partition(":")
    parts = path.split(".")
    if parts[:1] != ["r"] or not all(p.isdigit() for p in parts[1:]):
        return tree
    node, parent = tree, None
    for p in parts[1:]:
        if node.get("kind") != "group" or int(p) >= len(node["children"]):
            return tree
        parent, node = node, node["children"][int(p)]
    if verb == "add" and node["kind"] == "group":
        node["children"].append(blank())
    elif verb == "group" and node["kind"] == "group":
        node["children"].append({"kind": "group", "mode": "any", "children": [blank()]})
    elif verb == "remove" and parent is not None:
        parent["children"].pop(int(parts[-1]))
    return tree


# -- form nodes -> the rule tree -----------------------------------------------------------------------------

def to_rules(node: dict[str, Any]) -> dict[str, Any]:
    if node["kind"] == "group":
        children = [to_rules(c) for c in node["children"]]
        return {"not": {"any": children}} if node["mode"] == "not" else {node["mode"]: children}
    if node["kind"] == "raw":
        try:
            return json.loads(node["json"])
        except ValueError:
            return {}
    t = node["type"]
    if t == "stage":
        return {"type": "stage", "op": node["op"], "stages": [node["stage"]]}
    if t == "consent":
        return {"type": "consent", "channel": node["channel"], "purpose": node["purpose"]}
    if t == "event":
        out = {"type": "event", "name": node["name"], "op": node["op"], "count": _scalar(node["count"], "number")}
        if node["days"]:
            out["window"] = {"last_days": _scalar(node["days"], "number")}
        return out
    key = "metric" if t == "orders" else "field"
    out = {"type": t, key: node["field"], "op": node["op"]}
    if node["op"] not in NO_VALUE:
        out["value"] = _value(node["value"], field_kind(node), node["op"])
    return out


def _value(text: str, kind: str, op: str) -> Any:
    if op in r.RELATIVE_OPS:
        return _scalar(text, "number")
    if op in ("in", "not_in", "between"):
        return [_scalar(part.strip(), kind) for part in text.split(",") if part.strip()]
    return _scalar(text.strip() if kind != "string" else text, kind)


def _scalar(text: str, kind: str) -> Any:
    if kind == "number":
        for cast in (int, float):
            try:
                return cast(text)
            except ValueError:
                pass
    return text  # left as typed: a wrong number is refused by validation, naming its path


# -- the rule tree -> form nodes (editing a saved segment) ----------------------------------------------------

def from_rules(data: Any) -> dict[str, Any]:
    node = _from(data)
    return node if node["kind"] == "group" else {"kind": "group", "mode": "all", "children": [node]}


def _from(data: Any) -> dict[str, Any]:
    if isinstance(data, dict) and ("all" in data or "any" in data):
        mode = "all" if "all" in data else "any"
        return {"kind": "group", "mode": mode, "children": [_from(c) for c in data[mode]]}
    if isinstance(data, dict) and "not" in data:
        inner = data["not"]
        children = inner["any"] if isinstance(inner, dict) and "any" in inner else [inner]
        return {"kind": "group", "mode": "not", "children": [_from(c) for c in children]}
    t = data.get("type") if isinstance(data, dict) else None
    node = blank(t) if t in TYPES else None
    if node is None or (t == "event" and (data.get("where") or set(data.get("window") or {}) - {"last_days"})) or (
            t == "stage" and len(data.get("stages", [])) != 1) or (t == "profile" and data["field"].startswith("traits.")):
        return {"kind": "raw", "json": json.dumps(data, ensure_ascii=False)}
    if t == "stage":
        node.update(op=data.get("op", "in"), stage=data["stages"][0])
    elif t == "consent":
        node.update(channel=data["channel"], purpose=data["purpose"])
    elif t == "event":
        node.update(name=data["name"], op=data.get("op", "at_least"), count=str(data.get("count", 1)),
                    days=str((data.get("window") or {}).get("last_days", "")))
    else:
        value = data.get("value", "")
        node.update(field=data.get("metric") or data.get("field"), op=data["op"],
                    value=", ".join(str(v) for v in value) if isinstance(value, list) else str(value))
    return node


def annotate(node: dict[str, Any], path: str = "r", api: str = "rules") -> dict[str, Any]:
    """Give every node its form path and its path in the rule tree (as validation errors name it)."""
    node["path"], node["api"] = path, api
    if node["kind"] == "group":
        inner = f"{api}.not.any" if node["mode"] == "not" else f"{api}.{node['mode']}"
        for i, child in enumerate(node["children"]):
            annotate(child, f"{path}.{i}", f"{inner}[{i}]")
    return node
