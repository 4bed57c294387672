"""The journey builder's form and the journey definition, both ways, and the builder's edits.

The builder edits a *draft*: the definition with every value as typed (text), a condition node's rule
tree as the segment builder's form tree (`clm.segments.builder`), and successors as node ids. Inputs
are named by place: `t.*` the trigger, `e.*` the entry settings, `g.*` the goal, `n.<i>.*` node i
(`n.<i>.b.<k>.*` a split's branch k, `n.<i>.r.*` a condition's rule tree). The whole form comes back
with every HTMX post, so the server keeps no state between edits.

`act` applies a structural edit: a node added on an edge (`add.<edge>` names the type; the edge is
`start` or `<i>.<successor key>`), removed (its place is taken by what followed it), moved up or
down a straight chain, a split's branch added or removed, or an edit of a condition's rule tree.
`layout` lays the graph out as a vertical flow from the start with a column per branch; a node
reached a second time (a join or a loop) is drawn once and linked to. `to_definition` gives the JSON
the engine validates (clm.journeys.validate), plus the problems only the form can see.
"""

from __future__ import annotations

import json
import re
from typing import Any

from clm.journeys import definition as d
from clm.journeys.validate import Problem
from clm.lib.errors import FieldError
from clm.segments import builder as rules_form

TRIGGER_TYPES = tuple(d.TRIGGERS)
NODE_TYPES = tuple(d.NODE_TYPES)
ADDABLE = tuple(t for t in NODE_TYPES if t != "exit")
REENTRY = ("never", "always", "after_days")
VALUE_TYPES = ("string", "number", "bool", "null")
DATE_FIELDS = ("birthday", "first_order_at", "traits")
SEND_CHANNELS = ("email", "sms", "zalo", "messenger")
SHORT = {"wait": "wait", "wait_until": "at", "wait_for_event": "await", "condition": "if", "random_split": "ab",
         "send_message": "send", "webhook": "hook", "update_trait": "trait", "set_stage": "stage",
         "assign_owner": "owner", "add_to_segment": "add", "remove_from_segment": "remove", "exit": "end"}
_NODE = re.compile(r"^n\.(\d+)\.id$")
_BRANCH = re.compile(r"^n\.(\d+)\.b\.(\d+)\.name$")
_INT = re.compile(r"^-?\d+$")


# -- blanks --------------------------------------------------------------------------------------------------

def blank_node(kind: str, node_id: str) -> dict[str, Any]:
    node: dict[str, Any] = {"id": node_id, "type": kind, "label": ""}
    if kind == "wait":
        node.update(days="1", hours="", minutes="")
    elif kind == "wait_until":
        node.update(time="09:00", weekdays=[])
    elif kind == "wait_for_event":
        node.update(event="Order Completed", where="", days="3", hours="", minutes="")
    elif kind == "condition":
        node["tree"] = rules_form.empty()
    elif kind == "random_split":
        node["branches"] = [{"name": "A", "weight": "50", "control": False, "next": ""},
                            {"name": "control", "weight": "50", "control": True, "next": ""}]
    elif kind == "send_message":
        node.update(channel="email", template="", purpose="marketing")
    elif kind == "webhook":
        node["template"] = ""
    elif kind == "update_trait":
        node.update(trait="", value="", vtype="string")
    elif kind == "set_stage":
        node["stage"] = ""
    elif kind == "assign_owner":
        node["owner_ids"] = []
    elif kind in ("add_to_segment", "remove_from_segment"):
        node["segment_id"] = ""
    for key in successor_keys(node):
        if not key.startswith("b."):
            node[key] = ""
    return node


def blank() -> dict[str, Any]:
    """A new journey: an event trigger and a single exit (nodes are added on the start edge)."""
    return {"trigger": {"type": "event", "event": "", "where": "", "segment_id": "", "to": "", "from": "", "field": "birthday",
                        "trait": "", "offset_days": "", "every_year": True, "days": "", "gaps": ""}, "entry": {"reentry": "never", "reentry_days": "",
            "exit_on_segment_exit": False}, "goal": {"on": False, "event": "Order Completed", "within_days": "7",
            "where": ""}, "start": "end", "nodes": [blank_node("exit", "end")]}


# -- successors ----------------------------------------------------------------------------------------------

def successor_keys(node: dict[str, Any]) -> list[str]:
    """The keys of a draft node's ways out: next; yes/no; next/timeout_next; b.<k> for split branches."""
    kind = node["type"]
    if kind == "exit":
        return []
    if kind == "condition":
        return ["yes", "no"]
    if kind == "wait_for_event":
        return ["next", "timeout_next"]
    if kind == "random_split":
        return [f"b.{k}" for k in range(len(node["branches"]))]
    return ["next"]


def get_target(node: dict[str, Any], key: str) -> str:
    if key.startswith("b."):
        return node["branches"][int(key[2:])]["next"]
    return node.get(key, "")


def set_target(node: dict[str, Any], key: str, target: str) -> None:
    if key.startswith("b."):
        node["branches"][int(key[2:])]["next"] = target
    else:
        node[key] = target


def outcome_of(node: dict[str, Any], key: str) -> str:
    """The step outcome recorded when a run leaves `node` by `key` (for the report's branch counts)."""
    if key.startswith("b."):
        return node["branches"][int(key[2:])]["name"]
    return {"yes": "yes", "no": "no", "timeout_next": "timeout"}.get(key, "event" if node["type"] == "wait_for_event"
                                                                      else "")


# -- definition <-> draft ------------------------------------------------------------------------------------

def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _where_text(where: Any) -> str:
    return json.dumps(where, ensure_ascii=False) if where else ""


def _duration_text(node: dict[str, Any], duration: Any) -> None:
    duration = duration if isinstance(duration, dict) else {}
    for part in ("days", "hours", "minutes"):
        node[part] = _text(duration.get(part))


def from_definition(data: dict[str, Any]) -> dict[str, Any]:
    """A draft of a saved definition (every value as text, a condition's rules as a form tree)."""
    t = dict(data.get("trigger") or {})
    trigger = {"type": t.get("type", "event"), "event": _text(t.get("event")), "where": _where_text(t.get("where")),
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
                      "within_days": _text((g or {}).get("within_days") or 7), "where": _where_text((g or {}).get("where"))},
             "start": _text(data.get("start")), "nodes": []}
    for raw in data.get("nodes") or []:
        node = blank_node(raw["type"], raw["id"])
        node["label"] = _text(raw.get("label"))
        kind = raw["type"]
        if kind == "wait":
            _duration_text(node, raw.get("duration"))
        elif kind == "wait_for_event":
            node.update(event=_text(raw.get("event")), where=_where_text(raw.get("where")))
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
            for key in ("channel", "template", "purpose", "stage", "segment_id"):
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


def _where(text: str, path: str, node: str | None, problems: list[Problem]) -> list[Any]:
    if not (text or "").strip():
        return []
    try:
        value = json.loads(text)
    except ValueError:
        problems.append(Problem(path, node, "the property filters are not valid JSON"))
        return []
    return value if isinstance(value, list) else [value]


def to_definition(draft: dict[str, Any], path: str = "definition") -> tuple[dict[str, Any], list[Problem]]:
    """The definition JSON of a draft, and the problems found converting it (a value that is not of its
    type where the JSON would otherwise take the text, unreadable property filters)."""
    problems: list[Problem] = []
    t = draft["trigger"]
    trigger: dict[str, Any] = {"type": t["type"]}
    if t["type"] == "event":
        trigger["event"] = t["event"].strip()
        if where := _where(t["where"], f"{path}.trigger.where", None, problems):
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
        if where := _where(g["where"], f"{path}.goal.where", None, problems):
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
        if where := _where(node["where"], f"{at}.where", node["id"], problems):
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


# -- the posted form -> draft --------------------------------------------------------------------------------

def _get(data: dict[str, Any], key: str, default: str = "") -> str:
    value = data.get(key, default)
    return (value[0] if value else default) if isinstance(value, list) else str(value)


def _list(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key, [])
    return [v for v in (value if isinstance(value, list) else [value]) if v != ""]


def from_form(data: dict[str, Any]) -> dict[str, Any]:
    draft = blank()
    t = draft["trigger"]
    t["type"] = _get(data, "t.type", "event") if _get(data, "t.type") in TRIGGER_TYPES else "event"
    for key in ("event", "where", "segment_id", "to", "from", "field", "trait", "offset_days", "days", "gaps"):
        t[key] = _get(data, f"t.{key}", t.get(key, ""))
    t["field"] = t["field"] if t["field"] in DATE_FIELDS else "birthday"
    t["every_year"] = bool(_get(data, "t.every_year"))
    e = draft["entry"]
    e["reentry"] = _get(data, "e.reentry", "never") if _get(data, "e.reentry") in REENTRY else "never"
    e["reentry_days"] = _get(data, "e.reentry_days")
    e["exit_on_segment_exit"] = bool(_get(data, "e.exit_on_segment_exit"))
    g = draft["goal"]
    g["on"] = bool(_get(data, "g.on"))
    for key in ("event", "within_days", "where"):
        g[key] = _get(data, f"g.{key}", g[key])
    draft["start"] = _get(data, "start").strip()
    found = sorted({int(m[1]) for key in data if (m := _NODE.match(key))})
    draft["nodes"] = [_node_from_form(data, i) for i in found]
    _settle_types(draft)
    return draft


def _node_from_form(data: dict[str, Any], i: int) -> dict[str, Any]:
    p = f"n.{i}"
    kind = _get(data, f"{p}.type", "exit")
    kind = kind if kind in NODE_TYPES else "exit"
    previous = _get(data, f"{p}.previous_type", kind)
    node = blank_node(kind, _get(data, f"{p}.id").strip())
    node["label"] = _get(data, f"{p}.label")
    if previous != kind:  # a new type starts from its defaults and keeps where the node went on to
        old = {"type": previous if previous in NODE_TYPES else "exit", "branches": [{}] * _branch_count(data, i)}
        targets = [_get(data, f"{p}.{key}.next" if key.startswith("b.") else f"{p}.{key}") for key in successor_keys(old)]
        node["_old"] = targets
        return node
    for key in ("days", "hours", "minutes", "time", "event", "where", "channel", "template", "purpose", "trait",
                "value", "vtype", "stage", "segment_id"):
        if key in node:
            node[key] = _get(data, f"{p}.{key}", node[key])
    if "weekdays" in node:
        node["weekdays"] = _list(data, f"{p}.weekdays")
    if "owner_ids" in node:
        node["owner_ids"] = _list(data, f"{p}.owner_ids")
    if kind == "condition":
        node["tree"] = rules_form.from_form(data, f"{p}.r")
    if kind == "random_split":
        node["branches"] = [{"name": _get(data, f"{p}.b.{k}.name"), "weight": _get(data, f"{p}.b.{k}.weight"),
                             "control": bool(_get(data, f"{p}.b.{k}.control")),
                             "next": _get(data, f"{p}.b.{k}.next")} for k in range(_branch_count(data, i))]
    for key in successor_keys(node):
        if not key.startswith("b."):
            node[key] = _get(data, f"{p}.{key}")
    return node


def _branch_count(data: dict[str, Any], i: int) -> int:
    return len({m[2] for key in data if (m := _BRANCH.match(key)) and int(m[1]) == i})


# -- structural edits ----------------------------------------------------------------------------------------

def new_id(draft: dict[str, Any], kind: str) -> str:
    taken = {n["id"] for n in draft["nodes"]}
    k = 1
    while f"{SHORT[kind]}{k}" in taken:
        k += 1
    return f"{SHORT[kind]}{k}"


def _index(draft: dict[str, Any]) -> dict[str, int]:
    return {n["id"]: i for i, n in enumerate(draft["nodes"])}


def reachable(draft: dict[str, Any]) -> set[str]:
    index, seen, todo = _index(draft), set(), [draft["start"]]
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


def _settle_types(draft: dict[str, Any]) -> None:
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
    index = _index(draft)
    return _linear(node) and node["next"] in index and can_move_up(draft, index[node["next"]])


def move_down(draft: dict[str, Any], i: int) -> None:
    if i < len(draft["nodes"]) and can_move_down(draft, i):
        move_up(draft, _index(draft)[draft["nodes"][i]["next"]])


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
        if key.startswith("add.") and _get(data, key) in ADDABLE:
            insert(draft, key[4:], _get(data, key))
            return draft
    verb, _, arg = _get(data, "action").partition(":")
    parts = arg.split(".")
    if arg.startswith("n.") and len(parts) > 2 and parts[1].isdigit() and parts[2] == "r":
        i = int(parts[1])  # an edit of a condition's rule tree: the segment builder's own actions
        if i < len(draft["nodes"]) and draft["nodes"][i]["type"] == "condition":
            prefix = f"n.{i}."
            draft["nodes"][i]["tree"] = rules_form.act(draft["nodes"][i]["tree"], f"{verb}:{arg[len(prefix):]}")
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


# -- layout --------------------------------------------------------------------------------------------------

def layout(draft: dict[str, Any]) -> dict[str, Any]:
    """The graph as a vertical flow from the start: entries {"kind": "node", "i", "node", "edge",
    "branches": [{"key", "edge", "flow"}] (a node with several ways out)}, {"kind": "goto", "target",
    "edge"} (drawn elsewhere: a join or a loop) or {"kind": "missing", "target", "edge"}; plus the
    nodes the start does not reach (`orphans`)."""
    index = _index(draft)
    seen: set[str] = set()

    def flow(target: str, edge: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            if not target or target not in index:
                out.append({"kind": "missing", "target": target, "edge": edge})
                return out
            if target in seen:
                out.append({"kind": "goto", "target": target, "edge": edge, "node": draft["nodes"][index[target]]})
                return out
            seen.add(target)
            i = index[target]
            node = draft["nodes"][i]
            keys = successor_keys(node)
            entry = {"kind": "node", "i": i, "node": node, "edge": edge, "branches": []}
            out.append(entry)
            if not keys:
                return out
            if keys == ["next"]:
                target, edge = node["next"], f"{i}.next"
                continue
            entry["branches"] = [{"key": key, "edge": f"{i}.{key}", "outcome": outcome_of(node, key),
                                  "flow": flow(get_target(node, key), f"{i}.{key}")} for key in keys]
            return out

    drawn = flow(draft["start"], "start")
    orphans = [{"kind": "node", "i": i, "node": n, "edge": None, "branches": []}
               for i, n in enumerate(draft["nodes"]) if n["id"] not in seen]
    return {"flow": drawn, "orphans": orphans}


def annotate_rules(draft: dict[str, Any], path: str = "definition") -> None:
    """Give each condition's form tree its form and API paths (as the segment builder's editor expects)."""
    for i, node in enumerate(draft["nodes"]):
        if node["type"] == "condition":
            rules_form.annotate(node["tree"], f"n.{i}.r", f"{path}.nodes[{i}].rules")
