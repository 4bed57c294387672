"""A journey's graph as typed models: the trigger, entry settings, a goal, and nodes joined by ids.

A definition arrives as JSON and is read by `parse_definition`, whose errors name their path
(`definition.nodes[2].duration.days`). The graph checks (a node nobody reaches, a missing branch, a
wait without duration, a cycle without a wait, an action without its template) are in `validate.py`.
`DEFINITION_SCHEMA` is the published JSON Schema (docs/journeys.md, GET /api/v1/journeys/schema).

Successor fields (`next`, `yes`, `no`, `timeout_next`, a branch's `next`) are optional in the models
so that a missing one is reported as a missing branch of that node, not as a bare "field required".
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from clm.lib.errors import FieldError
from clm.segments.rules import TRAIT_KEY, PropertyFilter

NODE_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
MAX_NODES = 200
Name = Annotated[str, Field(min_length=1, max_length=255)]
NodeRef = Annotated[str, Field(min_length=1, max_length=64)] | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Duration(_Strict):
    """A length of time; the parts add up (`{"days": 1, "hours": 12}`)."""

    days: int = Field(0, ge=0, le=3650)
    hours: int = Field(0, ge=0, le=24 * 3650)
    minutes: int = Field(0, ge=0, le=60 * 24 * 3650)

    def delta(self) -> timedelta:
        return timedelta(days=self.days, hours=self.hours, minutes=self.minutes)


# -- triggers ------------------------------------------------------------------------------------------------

class EventTrigger(_Strict):
    """A tracked event `event` whose properties pass every filter in `where` (segment property filters)."""

    type: Literal["event"]
    event: Name
    where: list[PropertyFilter] = Field(default_factory=list, max_length=10)


class SegmentEnteredTrigger(_Strict):
    """The customer entered segment `segment_id` (outbox topic `segment.entered`)."""

    type: Literal["segment_entered"]
    segment_id: int = Field(ge=1)


class SegmentExitedTrigger(_Strict):
    """The customer left segment `segment_id` (outbox topic `segment.exited`)."""

    type: Literal["segment_exited"]
    segment_id: int = Field(ge=1)


class StageTrigger(_Strict):
    """The lifecycle stage changed (outbox topic `stage.changed`), to `to` and/or from `from` (null: any)."""

    type: Literal["stage_changed"]
    to: str | None = Field(None, min_length=1, max_length=32)
    from_: str | None = Field(None, alias="from", min_length=1, max_length=32)


class DateTrigger(_Strict):
    """A date on the profile: `birthday`, `first_order_at` or `traits.<name>` (a YYYY-MM-DD or ISO time
    trait), `offset_days` after it (negative: before), in the business time zone. `every_year`: its
    anniversary each year (birthdays); otherwise the date itself, once."""

    type: Literal["date"]
    field: str = Field(min_length=1, max_length=71)
    offset_days: int = Field(0, ge=-365, le=365)
    every_year: bool = True


class LastOrderTrigger(_Strict):
    """`days` days after the customer's last order, or `gaps` times the customer's expected time between
    orders after it (their usual gap, as the lifecycle rules' "gaps" measure it; checked by a daily sweep).
    Give exactly one of the two."""

    type: Literal["days_after_last_order"]
    days: int | None = Field(None, ge=1, le=3650)
    gaps: float | None = Field(None, gt=0, le=20)

    @model_validator(mode="after")
    def _one_measure(self) -> LastOrderTrigger:
        if (self.days is None) == (self.gaps is None):
            raise ValueError("give either days or gaps (multiples of the customer's usual gap between orders)")
        return self


class ApiTrigger(_Strict):
    """Started by POST /api/v1/journeys/{id}/trigger for one customer."""

    type: Literal["api"]


class SegmentOnceTrigger(_Strict):
    """A one-off start: every current member of segment `segment_id` enters when the journey is activated."""

    type: Literal["segment_once"]
    segment_id: int = Field(ge=1)


Trigger = Annotated[Union[EventTrigger, SegmentEnteredTrigger, SegmentExitedTrigger, StageTrigger,  # noqa: UP007
                          DateTrigger, LastOrderTrigger, ApiTrigger, SegmentOnceTrigger], Field(discriminator="type")]
TRIGGERS = {m.model_fields["type"].annotation.__args__[0]: m for m in (
    EventTrigger, SegmentEnteredTrigger, SegmentExitedTrigger, StageTrigger, DateTrigger, LastOrderTrigger,
    ApiTrigger, SegmentOnceTrigger)}


class Entry(_Strict):
    """Who may enter again: `never`, `always` (once their previous run ended) or `after_days` days after
    their previous entry. `exit_on_segment_exit`: a run started by entering a segment ends when the
    customer leaves that segment."""

    reentry: Literal["never", "always", "after_days"] = "never"
    reentry_days: int | None = Field(None, ge=1, le=3650)
    exit_on_segment_exit: bool = False


class Goal(_Strict):
    """The event that counts as success (e.g. `Order Completed`) within `within_days` of entering: it
    ends an open run as `converted` (and marks a finished run converted within the window)."""

    event: Name
    where: list[PropertyFilter] = Field(default_factory=list, max_length=10)
    within_days: int = Field(ge=1, le=365)


# -- nodes ---------------------------------------------------------------------------------------------------

class _Node(_Strict):
    id: str = Field(min_length=1, max_length=64)
    label: str = Field("", max_length=200)


class WaitNode(_Node):
    """Wait `duration`, then go on to `next`."""

    type: Literal["wait"]
    duration: Duration | None = None
    next: NodeRef = None


class WaitUntilNode(_Node):
    """Wait until the next `time` ("HH:MM", business time zone) on one of `weekdays` (0 Monday .. 6
    Sunday; empty: any day), then go on."""

    type: Literal["wait_until"]
    time: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    weekdays: list[Annotated[int, Field(ge=0, le=6)]] = Field(default_factory=list, max_length=7)
    next: NodeRef = None


class WaitForEventNode(_Node):
    """Wait for event `event` (passing `where`) for at most `timeout`: `next` if it comes, `timeout_next` if not."""

    type: Literal["wait_for_event"]
    event: Name
    where: list[PropertyFilter] = Field(default_factory=list, max_length=10)
    timeout: Duration | None = None
    next: NodeRef = None
    timeout_next: NodeRef = None


class ConditionNode(_Node):
    """A segment rule tree evaluated for this customer now: `yes` if it holds, else `no`."""

    type: Literal["condition"]
    rules: dict[str, Any]
    yes: NodeRef = None
    no: NodeRef = None


class Branch(_Strict):
    name: str = Field(min_length=1, max_length=32, pattern=r"^[\w\-]+$")
    weight: int = Field(ge=0, le=10_000)
    control: bool = False  # the control group: its customers get nothing (send it to an exit)
    next: NodeRef = None


class RandomSplitNode(_Node):
    """Customers are spread over `branches` by weight (an A/B test; a `control` branch gets nothing).
    The draw is fixed per run, so a retried step takes the same branch."""

    type: Literal["random_split"]
    branches: list[Branch] = Field(min_length=2, max_length=10)


class SendMessageNode(_Node):
    """Send template `template` on `channel` (through the channels' outbox; consent is checked there)."""

    type: Literal["send_message"]
    channel: str = Field(min_length=1, max_length=32)
    template: str | None = Field(None, max_length=120)
    purpose: Literal["marketing", "transactional"] = "marketing"
    next: NodeRef = None


class WebhookNode(_Node):
    """Call a webhook: a message on channel "webhook" with template `template` (its URL and body)."""

    type: Literal["webhook"]
    template: str | None = Field(None, max_length=120)
    next: NodeRef = None


class UpdateTraitNode(_Node):
    """Set trait `trait` to `value` (null removes it)."""

    type: Literal["update_trait"]
    trait: str = Field(min_length=1, max_length=64)
    value: str | int | float | bool | None = None
    next: NodeRef = None


class SetStageNode(_Node):
    """Move the customer to lifecycle stage `stage` (recorded in the stage history as rule journey:<id>)."""

    type: Literal["set_stage"]
    stage: str = Field(min_length=1, max_length=32)
    next: NodeRef = None


class AssignOwnerNode(_Node):
    """Make a staff user the customer's owner: the one in `owner_ids`, or round robin over several."""

    type: Literal["assign_owner"]
    owner_ids: list[Annotated[int, Field(ge=1)]] = Field(min_length=1, max_length=100)
    next: NodeRef = None


class AddToSegmentNode(_Node):
    """Add the customer to static segment `segment_id`."""

    type: Literal["add_to_segment"]
    segment_id: int = Field(ge=1)
    next: NodeRef = None


class RemoveFromSegmentNode(_Node):
    """Remove the customer from static segment `segment_id`."""

    type: Literal["remove_from_segment"]
    segment_id: int = Field(ge=1)
    next: NodeRef = None


class IssueVoucherNode(_Node):
    """Give the customer a single-use voucher code of loyalty reward `reward_id` (no points spent); the
    messages sent after it show it as `{{ voucher.code }}` (clm.loyalty.gifts)."""

    type: Literal["issue_voucher"]
    reward_id: int = Field(ge=1)
    next: NodeRef = None


class NpsSurveyNode(_Node):
    """Ask the customer the NPS question (0-10, with a comment) through the channels' outbox, with a signed link
    to the answer page (clm.service.satisfaction); `channel` empty: email, else SMS."""

    type: Literal["nps_survey"]
    channel: Literal["email", "sms", "zalo", "messenger"] | None = None
    next: NodeRef = None


class ExitNode(_Node):
    """The run ends here (completed)."""

    type: Literal["exit"]


NODE_TYPES: dict[str, type[_Node]] = {m.model_fields["type"].annotation.__args__[0]: m for m in (
    WaitNode, WaitUntilNode, WaitForEventNode, ConditionNode, RandomSplitNode, SendMessageNode, WebhookNode,
    UpdateTraitNode, SetStageNode, AssignOwnerNode, AddToSegmentNode, RemoveFromSegmentNode, IssueVoucherNode,
    NpsSurveyNode,
    ExitNode)}
WAITS = ("wait", "wait_until", "wait_for_event")
ACTIONS = ("send_message", "webhook", "update_trait", "set_stage", "assign_owner", "add_to_segment",
           "remove_from_segment", "issue_voucher", "nps_survey")
Node = Annotated[Union[tuple(NODE_TYPES.values())], Field(discriminator="type")]  # noqa: UP007


class Definition(_Strict):
    """A journey's graph: how customers enter, what counts as success, and the nodes from `start`."""

    trigger: Trigger
    entry: Entry = Field(default_factory=Entry)
    goal: Goal | None = None
    start: str = Field(min_length=1, max_length=64)
    nodes: list[Node] = Field(min_length=1, max_length=MAX_NODES)

    def node(self, node_id: str) -> Any:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)


DEFINITION_SCHEMA: dict[str, Any] = TypeAdapter(Definition).json_schema(by_alias=True)


def successors(node: Any) -> list[tuple[str, str | None]]:
    """(field path inside the node, target id or None) for every way out of `node`."""
    if isinstance(node, ExitNode):
        return []
    if isinstance(node, ConditionNode):
        return [("yes", node.yes), ("no", node.no)]
    if isinstance(node, WaitForEventNode):
        return [("next", node.next), ("timeout_next", node.timeout_next)]
    if isinstance(node, RandomSplitNode):
        return [(f"branches[{i}].next", b.next) for i, b in enumerate(node.branches)]
    return [("next", node.next)]


# -- parsing with paths --------------------------------------------------------------------------------------

def parse_definition(data: Any, path: str = "definition") -> Definition:
    """A typed definition from JSON data, or FieldError naming the path of the first problem."""
    if not isinstance(data, dict):
        raise FieldError(path, "must be an object with trigger, start and nodes")
    for key in ("trigger", "start", "nodes"):
        if key not in data:
            raise FieldError(f"{path}.{key}", "is required")
    trigger = data["trigger"]
    if not isinstance(trigger, dict) or trigger.get("type") not in TRIGGERS:
        raise FieldError(f"{path}.trigger.type", f"choose a trigger type from {', '.join(TRIGGERS)}")
    _check(TRIGGERS[trigger["type"]], trigger, f"{path}.trigger")
    nodes = data["nodes"]
    if not isinstance(nodes, list) or not nodes:
        raise FieldError(f"{path}.nodes", "must be a non-empty list of nodes")
    if len(nodes) > MAX_NODES:
        raise FieldError(f"{path}.nodes", f"a journey holds at most {MAX_NODES} nodes")
    for i, raw in enumerate(nodes):
        where = f"{path}.nodes[{i}]"
        if not isinstance(raw, dict) or raw.get("type") not in NODE_TYPES:
            raise FieldError(f"{where}.type", f"choose a node type from {', '.join(NODE_TYPES)}")
        _check(NODE_TYPES[raw["type"]], raw, where)
        if not NODE_ID.match(str(raw["id"])):
            raise FieldError(f"{where}.id", "a node id is 1-64 letters, digits, '_' or '-'")
    if isinstance(data["trigger"], dict) and data["trigger"].get("type") == "date":
        field = data["trigger"].get("field", "")
        if field not in ("birthday", "first_order_at") and not (
                field.startswith("traits.") and TRAIT_KEY.match(field[7:])):
            raise FieldError(f"{path}.trigger.field", "choose birthday, first_order_at or traits.<name>")
    return _check(Definition, data, path)


def _check(model: type[BaseModel], data: Any, path: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = list(err["loc"])
        # A discriminated union puts the chosen tag in the path (nodes.3.wait.duration): drop it.
        cleaned = [p for k, p in enumerate(loc) if not (k > 0 and isinstance(loc[k - 1], int) and isinstance(p, str)
                                                            and (p in NODE_TYPES or p in TRIGGERS))]
        cleaned = [p for k, p in enumerate(cleaned) if not (k > 0 and cleaned[k - 1] == "trigger" and p in TRIGGERS)]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in cleaned)
        message = "is not allowed here" if err["type"] == "extra_forbidden" else (
            "is required" if err["type"] == "missing" else err["msg"].removeprefix("Value error, "))
        raise FieldError(f"{path}{where}", message) from None


def dump_definition(definition: Definition) -> dict[str, Any]:
    """The definition as JSON data again (what is stored and exported)."""
    return definition.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
