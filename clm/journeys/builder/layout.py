"""The draft laid out as the vertical flow the builder and the journey's page draw."""

from __future__ import annotations

from typing import Any

from clm.journeys.builder import filters
from clm.journeys.builder.draft import get_target, index_of, outcome_of, successor_keys
from clm.segments import builder as rules_form


def layout(draft: dict[str, Any]) -> dict[str, Any]:
    """The graph as a vertical flow from the start: entries {"kind": "node", "i", "node", "edge",
    "branches": [{"key", "edge", "flow"}] (a node with several ways out)}, {"kind": "goto", "target",
    "edge"} (drawn elsewhere: a join or a loop) or {"kind": "missing", "target", "edge"}; plus the
    nodes the start does not reach (`orphans`)."""
    index = index_of(draft)
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
    """Give each condition's form tree and each property filter its form and API paths (as the segment
    builder's editor expects)."""
    filters.annotate(draft, path)
    for i, node in enumerate(draft["nodes"]):
        if node["type"] == "condition":
            rules_form.annotate(node["tree"], f"n.{i}.r", f"{path}.nodes[{i}].rules")
