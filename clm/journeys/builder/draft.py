"""A draft: the definition with every value as typed (text), as the builder edits it.

A condition node's rule tree is the segment builder's form tree (`clm.segments.builder`), and
successors are node ids. Inputs are named by place: `t.*` the trigger, `e.*` the entry settings, `g.*`
the goal, `n.<i>.*` node i (`n.<i>.b.<k>.*` a split's branch k, `n.<i>.r.*` a condition's rule tree).
The whole form comes back with every HTMX post, so the server keeps no state between edits.
"""

from __future__ import annotations

from typing import Any

from clm.journeys import definition as d
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
         "assign_owner": "owner", "add_to_segment": "add", "remove_from_segment": "remove", "issue_voucher": "voucher", "nps_survey": "nps",
         "exit": "end"}


# -- blanks --------------------------------------------------------------------------------------------------

def blank_node(kind: str, node_id: str) -> dict[str, Any]:
    node: dict[str, Any] = {"id": node_id, "type": kind, "label": ""}
    if kind == "wait":
        node.update(days="1", hours="", minutes="")
    elif kind == "wait_until":
        node.update(time="09:00", weekdays=[])
    elif kind == "wait_for_event":
        node.update(event="Order Completed", where=[], days="3", hours="", minutes="")
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
    elif kind == "issue_voucher":
        node["reward_id"] = ""
    elif kind == "nps_survey":
        node["channel"] = ""
    for key in successor_keys(node):
        if not key.startswith("b."):
            node[key] = ""
    return node


def blank() -> dict[str, Any]:
    """A new journey: an event trigger and a single exit (nodes are added on the start edge)."""
    return {"trigger": {"type": "event", "event": "", "where": [], "segment_id": "", "to": "", "from": "", "field": "birthday",
                        "trait": "", "offset_days": "", "every_year": True, "days": "", "gaps": ""}, "entry": {"reentry": "never", "reentry_days": "",
            "exit_on_segment_exit": False}, "goal": {"on": False, "event": "Order Completed", "within_days": "7",
            "where": []}, "start": "end", "nodes": [blank_node("exit", "end")]}


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


def index_of(draft: dict[str, Any]) -> dict[str, int]:
    return {n["id"]: i for i, n in enumerate(draft["nodes"])}


def posted_value(data: dict[str, Any], key: str, default: str = "") -> str:
    """One posted value (the first of a list), as text."""
    value = data.get(key, default)
    return (value[0] if value else default) if isinstance(value, list) else str(value)
