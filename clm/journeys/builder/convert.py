"""A saved definition as a draft, and a draft as the definition JSON the engine validates, with the
problems only the form can see (a value that is not of its type, unreadable property filters)."""

from __future__ import annotations

import re
from typing import Any

from clm.journeys.builder import filters
from clm.journeys.builder.draft import blank_node, successor_keys
from clm.journeys.validate import Problem
from clm.lib.errors import FieldError
from clm.segments import builder as rules_form

_INT = re.compile(r"^-?\d+$")


# -- definition <-> draft ------------------------------------------------------------------------------------

def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _duration_text(node: dict[str, Any], duration: Any) -> None:
    duration = duration if isinstance(duration, dict) else {}
    for part in ("days", "hours", "minutes"):
        node[part] = _text(duration.get(part))


def from_definition(data: dict[str, Any]) -> dict[str, Any]:
    """A draft of a saved definition (every value as text, a condition's rules as a form tree)."""
    t = dict(data.get("trigger") or {})
    trigger = {"type": t.get("type", "event"), "event": _text(t.get("event")), "where": filters.from_json(t.get("where")),
               "segment_id": _text(t.get("segment_id")), "to": _text(t.get("to")), "from": _text(t.get("from")),
               "field": "", "trait": "", "offset_days": _text(t.get("offset_days", "")),
               "every_year": bool(t.get("every_year", True)), "days": _text(t.get("days")), "gaps": _text(t.get("gaps"))}
    field = _text(t.get("field"))
    trigger["field"], trigger["trait"] = ("traits", field[7:]) if field.startswith("traits.") else (field or "birthday", "")
    e = dict(data.get("entry") or {})
    g = data.get("goal")
    draft = {"trigger": trigger,
             "entry": {"reentry": e.get("reentry", "never"), "reentry_days": _text(e.get("reentry_days")),
                       "exit_on_segment_exit": bool(e.get("exit_on_segment_exit"))},
             "goal": {"on": bool(g), "event": _text((g or {}).get("event") or "Order Completed"),
                      "within_days": _text((g or {}).get("within_days") or 7), "where": filters.from_json((g or {}).get("where"))},
             "start": _text(data.get("start")), "nodes": []}
    for raw in data.get("nodes") or []:
        node = blank_node(raw["type"], raw["id"])
        node["label"] = _text(raw.get("label"))
        kind = raw["type"]
        if kind == "wait":
            _duration_text(node, raw.get("duration"))
        elif kind == "wait_for_event":
            node.update(event=_text(raw.get("event")), where=filters.from_json(raw.get("where")))
            _duration_text(node, raw.get("timeout"))
        elif kind == "wait_until":
            node.update(time=_text(raw.get("time")), weekdays=[str(w) for w in raw.get("weekdays") or []])
        elif kind == "condition":
            node["tree"] = rules_form.from_rules(raw.get("rules") or {})
        elif kind == "random_split":
            node["branches"] = [{"name": _text(b.get("name")), "weight": _text(b.get("weight")),
                                 "control": bool(b.get("control")), "next": _text(b.get("next"))}
                                for b in raw.get("branches") or []]
        elif kind == "update_trait":
            value = raw.get("value")
            vtype = ("null" if value is None else "bool" if isinstance(value, bool)
                     else "number" if isinstance(value, int | float) else "string")
            node.update(trait=_text(raw.get("trait")), vtype=vtype,
                        value={True: "true", False: "false"}.get(value, _text(value)) if vtype == "bool" else _text(value))
        elif kind == "assign_owner":
            node["owner_ids"] = [str(i) for i in raw.get("owner_ids") or []]
        else:
            for key in ("channel", "template", "purpose", "stage", "segment_id", "reward_id"):
                if key in node:
                    node[key] = _text(raw.get(key, node[key]))
        for key in successor_keys(node):
            if not key.startswith("b."):
                node[key] = _text(raw.get(key))
        draft["nodes"].append(node)
    return draft


def _num(text: str) -> Any:
    """An integer from its text, or the text as typed (validation then names its path)."""
    text = (text or "").strip()
    return int(text) if _INT.match(text) else text


def _decimal(text: str) -> Any:
    try:
        return float(text.strip().replace(",", "."))
    except ValueError:
        return text


def _duration(node: dict[str, Any]) -> dict[str, Any] | None:
    parts = {k: _num(node.get(k, "")) for k in ("days", "hours", "minutes") if (node.get(k) or "").strip()}
    return parts or None


def to_definition(draft: dict[str, Any], path: str = "definition") -> tuple[dict[str, Any], list[Problem]]:
    """The definition JSON of a draft, and the problems found converting it (a value that is not of its
    type where the JSON would otherwise take the text, a property filter without its property)."""
    problems: list[Problem] = []
    t = draft["trigger"]
    trigger: dict[str, Any] = {"type": t["type"]}
    if t["type"] == "event":
        trigger["event"] = t["event"].strip()
        if where := filters.to_json(t["where"], f"{path}.trigger.where", None, "the trigger", problems):
            trigger["where"] = where
    elif t["type"] in ("segment_entered", "segment_exited", "segment_once"):
        trigger["segment_id"] = _num(t["segment_id"])
    elif t["type"] == "stage_changed":
        for key in ("to", "from"):
            if t[key]:
                trigger[key] = t[key]
    elif t["type"] == "date":
        trigger["field"] = f"traits.{t['trait'].strip()}" if t["field"] == "traits" else t["field"]
        if t["offset_days"].strip():
            trigger["offset_days"] = _num(t["offset_days"])
        trigger["every_year"] = bool(t["every_year"])
    elif t["type"] == "days_after_last_order":  # days, or multiples of the customer's usual gap between orders
        if t["gaps"].strip():
            trigger["gaps"] = _decimal(t["gaps"])
        if t["days"].strip() or not t["gaps"].strip():
            trigger["days"] = _num(t["days"])
    e = draft["entry"]
    entry: dict[str, Any] = {"reentry": e["reentry"]}
    if e["reentry"] == "after_days":
        entry["reentry_days"] = _num(e["reentry_days"]) if e["reentry_days"].strip() else None
    if e["exit_on_segment_exit"]:
        entry["exit_on_segment_exit"] = True
    data: dict[str, Any] = {"trigger": trigger, "entry": entry, "start": draft["start"], "nodes": []}
    g = draft["goal"]
    if g["on"]:
        data["goal"] = {"event": g["event"].strip(), "within_days": _num(g["within_days"])}
        if where := filters.to_json(g["where"], f"{path}.goal.where", None, "the goal", problems):
            data["goal"]["where"] = where
    for i, node in enumerate(draft["nodes"]):
        data["nodes"].append(_node_json(node, f"{path}.nodes[{i}]", problems))
    return data, problems


def _node_json(node: dict[str, Any], at: str, problems: list[Problem]) -> dict[str, Any]:
    kind = node["type"]
    out: dict[str, Any] = {"id": node["id"], "type": kind}
    if node.get("label", "").strip():
        out["label"] = node["label"].strip()
    if kind == "wait":
        out["duration"] = _duration(node)
    elif kind == "wait_until":
        out.update(time=node["time"], weekdays=[_num(w) for w in node["weekdays"]])
    elif kind == "wait_for_event":
        out.update(event=node["event"].strip(), timeout=_duration(node))
        if where := filters.to_json(node["where"], f"{at}.where", node["id"],
                                    f"node {node['id']!r} (wait_for_event)", problems):
            out["where"] = where
    elif kind == "condition":
        try:
            rules = rules_form.to_rules(node["tree"], f"{at}.rules")
            # The editor shows a lone condition inside an "all" group; saved, it is the condition itself.
            out["rules"] = rules["all"][0] if list(rules) == ["all"] and len(rules["all"]) == 1 else rules
        except FieldError as exc:
            problems.append(Problem(exc.field or f"{at}.rules", node["id"],
                                    f"node {node['id']!r} (condition): {exc.message}"))
            out["rules"] = {}
    elif kind == "random_split":
        out["branches"] = [{"name": b["name"].strip(), "weight": _num(b["weight"]), "next": b["next"] or None,
                            **({"control": True} if b["control"] else {})} for b in node["branches"]]
    elif kind == "send_message":
        out.update(channel=node["channel"], template=node["template"] or None, purpose=node["purpose"])
    elif kind == "webhook":
        out["template"] = node["template"] or None
    elif kind == "update_trait":
        out.update(trait=node["trait"].strip(), value=_trait_value(node, at, problems))
    elif kind == "set_stage":
        out["stage"] = node["stage"]
    elif kind == "assign_owner":
        out["owner_ids"] = [_num(o) for o in node["owner_ids"]]
    elif kind in ("add_to_segment", "remove_from_segment"):
        out["segment_id"] = _num(node["segment_id"])
    elif kind == "issue_voucher":
        out["reward_id"] = _num(node["reward_id"])
    elif kind == "nps_survey":
        out["channel"] = node["channel"] or None
    for key in successor_keys(node):
        if not key.startswith("b."):
            out[key] = node[key] or None
    return {k: v for k, v in out.items() if v is not None or k in ("value",)}


def _trait_value(node: dict[str, Any], at: str, problems: list[Problem]) -> Any:
    text, vtype = node["value"], node["vtype"]
    if vtype == "null":
        return None
    if vtype == "bool":
        return text.strip().lower() in ("true", "1", "yes", "có")
    if vtype == "number":
        for cast in (int, float):
            try:
                return cast(text.strip())
            except ValueError:
                pass
        problems.append(Problem(f"{at}.value", node["id"], f"node {node['id']!r} (update_trait): the value must be a "
                                                            "number (or set it as text)"))
    return text


