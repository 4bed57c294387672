"""Checking a journey graph before it is saved: every problem names its node and its path.

Graph checks (no database): duplicate ids, an unknown start, a missing branch or one pointing nowhere,
a wait without duration (or a wait for an event without timeout), an action missing its template,
a node unreachable from the start, a cycle on which no node waits (a customer would loop at once),
a random split whose weights add up to nothing. References (with a session): segments exist (static
ones for add/remove), the condition's rule tree holds, stages are stages, owners are active users,
vouchers name a loyalty reward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from clm.journeys import definition as d
from clm.lib.errors import FieldError


@dataclass(frozen=True)
class Problem:
    field: str  # path inside the request body, e.g. definition.nodes[2].next
    node: str | None  # the node's id
    message: str

    def error(self) -> FieldError:
        return FieldError(self.field, self.message, "invalid_journey")


def graph_problems(defn: d.Definition, path: str = "definition") -> list[Problem]:
    """Every structural problem of the graph, in node order."""
    out: list[Problem] = []
    index: dict[str, int] = {}
    for i, node in enumerate(defn.nodes):
        if node.id in index:
            out.append(Problem(f"{path}.nodes[{i}].id", node.id, f"node {node.id!r}: another node has this id"))
        else:
            index[node.id] = i
    if defn.start not in index:
        out.append(Problem(f"{path}.start", None, f"the start node {defn.start!r} is not among the nodes"))
    for i, node in enumerate(defn.nodes):
        at = f"{path}.nodes[{i}]"
        name = f"node {node.id!r} ({node.type})"
        for field, target in d.successors(node):
            if target is None:
                out.append(Problem(f"{at}.{field}", node.id, f"{name}: missing branch: set {field.split('.')[-1]!r} "
                                                              "to the node that follows (an exit node ends the run)"))
            elif target not in index:
                out.append(Problem(f"{at}.{field}", node.id, f"{name}: {field} points to unknown node {target!r}"))
        if isinstance(node, d.WaitNode) and (node.duration is None or not node.duration.delta()):
            out.append(Problem(f"{at}.duration", node.id, f"{name}: a wait needs a duration longer than zero"))
        if isinstance(node, d.WaitForEventNode) and (node.timeout is None or not node.timeout.delta()):
            out.append(Problem(f"{at}.timeout", node.id, f"{name}: waiting for an event needs a timeout"))
        if isinstance(node, d.SendMessageNode | d.WebhookNode) and not (node.template or "").strip():
            out.append(Problem(f"{at}.template", node.id, f"{name}: the action is missing its template"))
        if isinstance(node, d.RandomSplitNode):
            if not sum(b.weight for b in node.branches):
                out.append(Problem(f"{at}.branches", node.id, f"{name}: the branch weights add up to zero"))
            names = [b.name for b in node.branches]
            if len(set(names)) != len(names):
                out.append(Problem(f"{at}.branches", node.id, f"{name}: two branches have the same name"))
            if sum(b.control for b in node.branches) > 1:
                out.append(Problem(f"{at}.branches", node.id, f"{name}: at most one branch is the control group"))
    if defn.entry.reentry == "after_days" and defn.entry.reentry_days is None:
        out.append(Problem(f"{path}.entry.reentry_days", None, "re-entry after N days needs reentry_days"))
    if defn.entry.exit_on_segment_exit and defn.trigger.type != "segment_entered":
        out.append(Problem(f"{path}.entry.exit_on_segment_exit", None,
                           "exiting on leaving the trigger segment needs a segment_entered trigger"))
    if out:
        return out
    out += _unreachable(defn, index, path)
    out += _instant_cycles(defn, index, path)
    return out


def _targets(node: Any) -> list[str]:
    return [t for _, t in d.successors(node) if t is not None]


def _unreachable(defn: d.Definition, index: dict[str, int], path: str) -> list[Problem]:
    seen, todo = {defn.start}, [defn.start]
    while todo:
        for target in _targets(defn.nodes[index[todo.pop()]]):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return [Problem(f"{path}.nodes[{i}]", n.id, f"node {n.id!r} ({n.type}) is unreachable from the start")
            for i, n in enumerate(defn.nodes) if n.id not in seen]


def _instant_cycles(defn: d.Definition, index: dict[str, int], path: str) -> list[Problem]:
    """A cycle among nodes that do not wait would run a customer round it at once, for ever."""
    instant = {n.id for n in defn.nodes if n.type not in d.WAITS}
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    found: list[str] = []

    def visit(node_id: str, stack: list[str]) -> None:
        state[node_id] = 1
        stack.append(node_id)
        for target in _targets(defn.nodes[index[node_id]]):
            if target not in instant:
                continue
            if state.get(target) == 1 and not found:
                found.extend(stack[stack.index(target):])
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[node_id] = 2

    for node_id in sorted(instant, key=index.get):
        if node_id not in state and not found:
            visit(node_id, [])
    if not found:
        return []
    first = found[0]
    loop = " -> ".join([*found, first])
    return [Problem(f"{path}.nodes[{index[first]}]", first,
                    f"node {first!r} is on a cycle with no wait ({loop}): put a wait on the cycle")]


def reference_problems(session: Session, defn: d.Definition, path: str = "definition") -> list[Problem]:
    """Problems with what the graph names in the database: segments, rule trees, stages, users."""
    from clm.access.models import User
    from clm.lifecycle.rules import current_rules
    from clm.loyalty.models import Reward
    from clm.segments.models import Segment
    from clm.segments.rules import parse_rules
    from clm.segments.service import check_tree

    out: list[Problem] = []
    stages = {s.key for s in current_rules().stages}

    def segment(segment_id: int, where: str, node: str | None, static: bool = False) -> None:
        found = session.get(Segment, segment_id)
        if found is None:
            out.append(Problem(where, node, f"segment {segment_id} does not exist"))
        elif static and found.kind != "static":
            out.append(Problem(where, node, f"segment {found.name!r} is dynamic: only a static segment takes "
                                            "members from a journey"))

    trigger = defn.trigger
    if isinstance(trigger, d.SegmentEnteredTrigger | d.SegmentExitedTrigger | d.SegmentOnceTrigger):
        segment(trigger.segment_id, f"{path}.trigger.segment_id", None)
    if isinstance(trigger, d.StageTrigger):
        for key, value in (("to", trigger.to), ("from", trigger.from_)):
            if value is not None and value not in stages:
                out.append(Problem(f"{path}.trigger.{key}", None, f"{value!r} is not a stage; choose from "
                                                                 f"{', '.join(sorted(stages))}"))
    for i, node in enumerate(defn.nodes):
        at = f"{path}.nodes[{i}]"
        if isinstance(node, d.ConditionNode):
            try:
                parse_rules(node.rules, f"{at}.rules")
                check_tree(session, node.rules)
            except FieldError as exc:
                field = exc.field if exc.field.startswith(at) else f"{at}.{exc.field}"
                out.append(Problem(field, node.id, f"node {node.id!r} (condition): {exc.message}"))
        elif isinstance(node, d.AddToSegmentNode | d.RemoveFromSegmentNode):
            segment(node.segment_id, f"{at}.segment_id", node.id, static=True)
        elif isinstance(node, d.SetStageNode) and node.stage not in stages:
            out.append(Problem(f"{at}.stage", node.id, f"node {node.id!r}: {node.stage!r} is not a stage; choose "
                                                         f"from {', '.join(sorted(stages))}"))
        elif isinstance(node, d.IssueVoucherNode) and session.get(Reward, node.reward_id) is None:
            out.append(Problem(f"{at}.reward_id", node.id, f"node {node.id!r} (issue_voucher): loyalty reward "
                                                             f"{node.reward_id} does not exist; pick one of the rewards"))
        elif isinstance(node, d.AssignOwnerNode):
            for k, user_id in enumerate(node.owner_ids):
                user = session.get(User, user_id)
                if user is None or not user.active:
                    out.append(Problem(f"{at}.owner_ids[{k}]", node.id,
                                       f"node {node.id!r}: no active staff user has id {user_id}"))
    return out


def check(session: Session | None, data: Any, path: str = "definition") -> tuple[d.Definition | None, list[Problem]]:
    """Parse and check a definition; (definition, []) when it holds, else (None or it, problems)."""
    try:
        defn = d.parse_definition(data, path)
    except FieldError as exc:
        return None, [Problem(exc.field or path, None, exc.message)]
    problems = graph_problems(defn, path)
    if not problems and session is not None:
        problems = reference_problems(session, defn, path)
    return defn, problems


def checked(session: Session | None, data: Any, path: str = "definition") -> d.Definition:
    """The definition, or FieldError for its first problem (a 422 naming the path and the node)."""
    defn, problems = check(session, data, path)
    if problems:
        raise problems[0].error()
    return defn
