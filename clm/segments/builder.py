"""The builder page's form and the rule tree, both ways.

The builder edits a tree of form nodes: a group {"kind": "group", "mode": all|any|not, "children": [...]}
or a condition {"kind": "cond", "type": ..., "field", "op", "value" (as typed), ...}. Every input is named
by its node's path ("r", "r.0", "r.0.1"; an event's property filters "r.0.where.1") so the whole tree
comes back with each HTMX post. Every condition kind is editable: profile fields and custom traits (with
the JSON type compared), stage and "entered stage", events (count, window, property filters), order
metrics, bought a product or category, scores, consent and another segment. A tree this form cannot
show (none is known) would be kept as it is ({"kind": "raw"}) and could only be removed. `to_rules`
gives the JSON rule tree the service validates; `api_path` names each node as validation errors do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from clm.lib.errors import FieldError
from clm.segments import rules as r

TYPES = ("profile", "stage", "stage_entered", "event", "orders", "bought", "score", "loyalty", "consent", "segment")
MODES = ("all", "any", "not")
EVENT_OPS = ("at_least", "at_most", "exactly")
STAGE_OPS = ("in", "not_in")
JSON_TYPES = ("string", "number", "bool")
WINDOWS = ("last", "range", "ever")
TARGETS = ("category", "sku")
TRAITS = "traits"  # the profile "field" that means a custom trait, named in `trait`
NUMBER_METRICS = ("count", "revenue", "average_order_value")
NO_VALUE = ("exists", "not_exists", "is_true", "is_false")
_CHILD = re.compile(r"^(?P<parent>.+)\.(?P<i>\d+)\.kind$")
_FILTER = re.compile(r"^(?P<parent>.+)\.where\.(?P<i>\d+)\.property$")
_TEXT_KEYS = ("field", "trait", "jtype", "op", "value", "name", "count", "window", "days", "since", "until",
              "stage", "channel", "purpose", "target", "item", "segment_id")


def blank(kind: str = "profile") -> dict[str, Any]:
    return {"kind": "cond", "type": kind,
            "field": {"profile": "city", "orders": "count", "score": "p_alive", "loyalty": "tier"}.get(kind, ""),
            "trait": "", "jtype": "string", "op": {"event": "at_least", "stage": "in"}.get(kind, "eq"),
            "value": "", "name": "", "count": "1", "window": "ever" if kind == "bought" else "last", "days": "30",
            "since": "", "until": "", "stages": ["retention"], "stage": "retention", "channel": "zalo",
            "purpose": "marketing", "target": "category", "item": "", "segment_id": "", "where": []}


def blank_filter() -> dict[str, Any]:
    return {"property": "", "jtype": "string", "op": "eq", "value": ""}


def empty() -> dict[str, Any]:
    return {"kind": "group", "mode": "all", "children": [blank()]}


def field_kind(node: dict[str, Any]) -> str:
    """The value type compared by a profile, orders or score condition (or a property filter)."""
    if "property" in node or node.get("field") == TRAITS:
        return node["jtype"] if node["jtype"] in JSON_TYPES else "string"
    if node["type"] == "orders":
        return r.ORDER_METRICS.get(node["field"], "number")
    if node["type"] == "score":
        return r.SCORE_FIELDS.get(node["field"], "number")
    if node["type"] == "loyalty":
        return r.LOYALTY_FIELDS.get(node["field"], "number")
    if node["field"] in r.DATE_FIELDS:
        return "date"
    return "datetime" if node["field"] in r.DATETIME_FIELDS else "string"


def fields_of(kind: str) -> tuple[str, ...]:
    return {"profile": r.PROFILE_FIELDS + (TRAITS,), "orders": NUMBER_METRICS + ("first_order_at", "last_order_at"),
            "score": tuple(r.SCORE_FIELDS), "loyalty": tuple(r.LOYALTY_FIELDS)}.get(kind, ())


def ops_of(node: dict[str, Any]) -> tuple[str, ...]:
    if node.get("type") == "event":
        return EVENT_OPS
    if node.get("type") == "stage":
        return STAGE_OPS
    return r.OPS_BY_TYPE.get(field_kind(node), ())


def walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every condition node of a form tree."""
    if node["kind"] == "group":
        for child in node["children"]:
            yield from walk(child)
    else:
        yield node


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
        for key in _TEXT_KEYS:
            node[key] = get(key, node[key]) if key == "value" else get(key, node[key]).strip()
        stages = data.get(f"{path}.stages", [])
        node["stages"] = [s.strip() for s in (stages if isinstance(stages, list) else [stages]) if s.strip()]
        node["where"] = filters_from_form(data, path)
    if node["type"] in ("profile", "orders", "score", "loyalty") and node["field"] not in fields_of(node["type"]):
        node["field"] = fields_of(node["type"])[0]
    _settle(node)
    return node


def filters_from_form(data: dict[str, Any], parent: str) -> list[dict[str, Any]]:
    """The property filters posted under `<parent>.where.<i>` (an event condition's, or a journey's
    trigger, goal or wait for an event, which edit theirs with these same controls)."""
    found = sorted({int(m["i"]) for key in data if (m := _FILTER.match(key)) and m["parent"] == parent})
    return [_filter_from_form(data, f"{parent}.where.{i}") for i in found]


def _filter_from_form(data: dict[str, Any], path: str) -> dict[str, Any]:
    out = blank_filter()
    for key in out:
        value = data.get(f"{path}.{key}", out[key])
        value = (value[0] if value else out[key]) if isinstance(value, list) else str(value)
        out[key] = value if key == "value" else value.strip()
    _settle(out)
    return out


def _settle(node: dict[str, Any]) -> None:
    """Pick valid choices where a change made the old ones meaningless (a field of another type)."""
    if node.get("jtype") not in JSON_TYPES:
        node["jtype"] = "string"
    if node.get("window", "last") not in WINDOWS:
        node["window"] = "last"
    if node.get("target", "category") not in TARGETS:
        node["target"] = "category"
    if node["op"] not in ops_of(node):
        node["op"] = ops_of(node)[0]


def act(tree: dict[str, Any], action: str) -> dict[str, Any]:
    """add:<group path> (a condition), group:<group path> (a sub-group), remove:<path>,
    where:<event condition path> (a property filter), unwhere:<condition path>.where.<i>."""
    verb, _, path = (action or "").partition(":")
    index = None
    if verb == "unwhere":
        path, _, k = path.rpartition(".where.")
        if not k.isdigit():
            return tree
        index = int(k)
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
    elif verb == "where" and node.get("type") == "event" and len(node["where"]) < 10:
        node["where"].append(blank_filter())
    elif verb == "unwhere" and node.get("type") == "event" and index is not None and index < len(node["where"]):
        node["where"].pop(index)
    return tree


# -- form nodes -> the rule tree -----------------------------------------------------------------------------

def to_rules(node: dict[str, Any], api: str = "rules") -> dict[str, Any]:
    """The rule tree of a form tree; a trait or property compared as a number but typed as something else
    is refused here (FieldError naming its path), as its JSON type would otherwise be taken from the text."""
    if node["kind"] == "group":
        if node["mode"] == "not" and len(node["children"]) == 1:
            return {"not": to_rules(node["children"][0], f"{api}.not")}
        inner = f"{api}.not.any" if node["mode"] == "not" else f"{api}.{node['mode']}"
        children = [to_rules(c, f"{inner}[{i}]") for i, c in enumerate(node["children"])]
        return {"not": {"any": children}} if node["mode"] == "not" else {node["mode"]: children}
    if node["kind"] == "raw":
        try:
            return json.loads(node["json"])
        except ValueError:
            return {}
    t = node["type"]
    if t == "stage":
        return {"type": "stage", "op": node["op"], "stages": list(node["stages"])}
    if t == "stage_entered":
        return {"type": "stage_entered", "stage": node["stage"], "within_days": _scalar(node["days"], "number")}
    if t == "consent":
        return {"type": "consent", "channel": node["channel"], "purpose": node["purpose"]}
    if t == "segment":
        return {"type": "segment", "segment_id": _scalar(node["segment_id"], "number")}
    if t == "event":
        out = {"type": "event", "name": node["name"], "op": node["op"], "count": _scalar(node["count"], "number")}
        out.update(_window(node))
        if node["where"]:
            out["where"] = filters_to_rules(node["where"], f"{api}.where")
        return out
    if t == "bought":
        return {"type": "bought", node["target"]: node["item"], **_window(node)}
    if t == "profile":
        field = f"traits.{node['trait'].strip()}" if node["field"] == TRAITS else node["field"]
        return _comparison({"type": "profile", "field": field}, node, api)
    if t == "loyalty":
        head = {"type": "loyalty", "field": node["field"]}
        if node["field"] == "expiring":
            head["within_days"] = _scalar(node["days"], "number")
        return _comparison(head, node, api)
    key = "metric" if t == "orders" else "field"
    return _comparison({"type": t, key: node["field"]}, node, api)


def filters_to_rules(filters: list[dict[str, Any]], api: str = "where") -> list[dict[str, Any]]:
    """The property filters' JSON (`{"property", "op", "value"}`); FieldError names `<api>[i].value` when a
    value compared as a number is not one."""
    return [_comparison({"property": f["property"]}, f, f"{api}[{i}]") for i, f in enumerate(filters)]


def _comparison(head: dict[str, Any], node: dict[str, Any], api: str) -> dict[str, Any]:
    out = {**head, "op": node["op"]}
    if node["op"] not in NO_VALUE:
        kind = field_kind(node)
        out["value"] = value = _value(node["value"], kind, node["op"])
        json_number = kind == "number" and ("property" in node or node.get("field") == TRAITS)
        if json_number and any(isinstance(v, str) for v in (value if isinstance(value, list) else [value])):
            raise FieldError(f"{api}.value", "must be a number (or compare it as text)")
    return out


def _window(node: dict[str, Any]) -> dict[str, Any]:
    if node["window"] == "last":
        return {"window": {"last_days": _scalar(node["days"], "number")}}
    if node["window"] == "range":
        window = {k: node[k] for k in ("since", "until") if node[k]}
        return {"window": window} if window else {}
    return {}


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
        many = isinstance(inner, dict) and len(inner.get("any") or []) > 1
        return {"kind": "group", "mode": "not", "children": [_from(c) for c in (inner["any"] if many else [inner])]}
    try:
        c = r.CONDITIONS[data["type"]].model_validate(data)
        return _from_condition(c)
    except (KeyError, TypeError, ValueError, ValidationError, FieldError):
        return {"kind": "raw", "json": json.dumps(data, ensure_ascii=False)}


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return "" if value is None else str(value)


def _from_comparison(node: dict[str, Any], c: r.Comparison) -> None:
    node.update(op=c.op, value=_text(c.value))


def _from_window(node: dict[str, Any], window: r.Window | None) -> None:
    if window is None:
        node["window"] = "ever"
    elif window.last_days:
        node.update(window="last", days=str(window.last_days))
    else:
        node.update(window="range", since=window.since.isoformat() if window.since else "",
                    until=window.until.isoformat() if window.until else "")


def _from_condition(c: Any) -> dict[str, Any]:
    node = blank(c.type)
    if isinstance(c, r.ProfileCondition):
        if c.field.startswith("traits."):
            node.update(field=TRAITS, trait=c.field[7:], jtype=r.field_type(c))
        else:
            node["field"] = c.field
        _from_comparison(node, c)
    elif isinstance(c, r.OrdersCondition):
        node["field"] = c.metric
        _from_comparison(node, c)
    elif isinstance(c, r.ScoreCondition):
        node["field"] = c.field
        _from_comparison(node, c)
    elif isinstance(c, r.LoyaltyCondition):
        node["field"] = c.field
        if c.within_days is not None:
            node["days"] = str(c.within_days)
        _from_comparison(node, c)
    elif isinstance(c, r.StageCondition):
        node.update(op=c.op, stages=list(c.stages))
    elif isinstance(c, r.StageEnteredCondition):
        node.update(stage=c.stage, days=str(c.within_days))
    elif isinstance(c, r.EventCondition):
        node.update(name=c.name, op=c.op, count=str(c.count))
        _from_window(node, c.window)
        node["where"] = filters_from_rules(c.where)
    elif isinstance(c, r.BoughtCondition):
        node.update(target="sku" if c.sku is not None else "category", item=c.sku if c.sku is not None else c.category)
        _from_window(node, c.window)
    elif isinstance(c, r.ConsentCondition):
        node.update(channel=c.channel, purpose=c.purpose)
    elif isinstance(c, r.SegmentCondition):
        node["segment_id"] = str(c.segment_id)
    return node


def filters_from_rules(where: list[Any]) -> list[dict[str, Any]]:
    """Form nodes of saved property filters (PropertyFilter models or their JSON)."""
    out = []
    for f in where or []:
        f = f if isinstance(f, r.PropertyFilter) else r.PropertyFilter.model_validate(f)
        out.append({"property": f.property, "jtype": r.field_type(f), "op": f.op, "value": _text(f.value)})
    return out


def annotate_filters(filters: list[dict[str, Any]], parent: str, api: str) -> None:
    """Give each filter its form path (`<parent>.where.<i>`) and API path (`<api>[i]`)."""
    for i, f in enumerate(filters):
        f["path"], f["api"] = f"{parent}.where.{i}", f"{api}[{i}]"


def annotate(node: dict[str, Any], path: str = "r", api: str = "rules") -> dict[str, Any]:
    """Give every node its form path and its path in the rule tree (as validation errors name it)."""
    node["path"], node["api"] = path, api
    if node["kind"] == "group":
        single_not = node["mode"] == "not" and len(node["children"]) == 1
        inner = f"{api}.not" if single_not else (f"{api}.not.any" if node["mode"] == "not" else f"{api}.{node['mode']}")
        for i, child in enumerate(node["children"]):
            annotate(child, f"{path}.{i}", inner if single_not else f"{inner}[{i}]")
    elif node["kind"] == "cond":
        annotate_filters(node.get("where", []), path, f"{api}.where")
    return node
