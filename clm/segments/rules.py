"""The segment rule tree: `all` / `any` / `not` groups over typed conditions, as Pydantic models.

A tree arrives as JSON, is checked by `parse_rules` (every error names its path inside the tree, e.g.
`rules.all[1].op`), compiled to SQL by `compile.py`, evaluated in plain Python by `evaluate.py` and shown
to people by `render.py`. `RULES_SCHEMA` is the published JSON Schema (docs/segments.md).

Values are data, never SQL: strings match literally (no wildcards), and every comparison is typed, so
an operator that makes no sense for a field (a `contains` on a date) is refused here, not at query time.
"""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, ValidationError

from clm.lib.errors import FieldError

MAX_TEXT = 500
MAX_ITEMS = 500
MAX_DAYS = 36_500
MAX_DEPTH = 12
MAX_CONDITIONS = 100

STRING_FIELDS = ("email", "phone", "full_name", "given_name", "family_name", "gender", "city", "external_id")
DATE_FIELDS = ("birthday",)
DATETIME_FIELDS = ("created_at", "first_seen_at", "last_seen_at")
PROFILE_FIELDS = STRING_FIELDS + DATE_FIELDS + DATETIME_FIELDS
TRAIT_KEY = re.compile(r"^[\w][\w .\-]{0,63}$")

STRING_OPS = ("eq", "ne", "contains", "not_contains", "starts_with", "ends_with", "in", "not_in", "exists", "not_exists")
NUMBER_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "exists", "not_exists")
DATE_OPS = ("on", "before", "after", "between", "within_last_days", "more_than_days_ago", "within_next_days",
            "anniversary_within_days", "exists", "not_exists")
BOOL_OPS = ("is_true", "is_false", "exists", "not_exists")
# Operators whose answer changes with the clock alone (the periodic sweep re-checks them).
RELATIVE_OPS = ("within_last_days", "more_than_days_ago", "within_next_days", "anniversary_within_days")
NEGATIVE_OPS = {"ne": "eq", "not_contains": "contains", "not_in": "in", "not_exists": "exists"}

ORDER_METRICS = {"count": "number", "revenue": "number", "average_order_value": "number",
                 "first_order_at": "datetime", "last_order_at": "datetime"}
LOYALTY_FIELDS = {"tier": "string", "available": "number", "lifetime": "number", "expiring": "number"}
SCORE_FIELDS = {"rfm_segment": "string", "r_score": "number", "f_score": "number", "m_score": "number",
                "p_alive": "number", "predicted_clv_12m": "number", "churn_risk": "number"}
OPS_BY_TYPE = {"string": STRING_OPS, "number": NUMBER_OPS, "date": DATE_OPS, "datetime": DATE_OPS, "bool": BOOL_OPS}

Scalar = str | float | int | bool | None | list


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Strict):
    """A time window in UTC days: the last `last_days` days (today included), or `since`..`until` (inclusive).
    No window at all means "ever"."""

    last_days: int | None = Field(None, ge=1, le=MAX_DAYS)
    since: date | None = None
    until: date | None = None


class Comparison(_Strict):
    """`op` and `value`, the part shared by every typed comparison."""

    op: str
    value: Scalar = None


class ProfileCondition(Comparison):
    """A profile field (`city`, `birthday`...) or a custom trait (`traits.skin_type`)."""

    type: Literal["profile"]
    field: str


class StageCondition(_Strict):
    """The current lifecycle stage is one of `stages` (`op: in`) or none of them (`op: not_in`)."""

    type: Literal["stage"]
    op: Literal["in", "not_in"] = "in"
    stages: list[Annotated[str, Field(min_length=1, max_length=32)]] = Field(min_length=1, max_length=50)


class StageEnteredCondition(_Strict):
    """Entered stage `stage` within the last `within_days` days."""

    type: Literal["stage_entered"]
    stage: str = Field(min_length=1, max_length=32)
    within_days: int = Field(ge=1, le=MAX_DAYS)


class PropertyFilter(Comparison):
    """A filter on the event's properties (`properties.<property>`)."""

    property: str


class EventCondition(_Strict):
    """Performed event `name` at least / at most / exactly `count` times in `window`, counting only the
    events whose properties pass every filter in `where`. `exactly 0` is "did not perform"."""

    type: Literal["event"]
    name: str = Field(min_length=1, max_length=255)
    op: Literal["at_least", "at_most", "exactly"] = "at_least"
    count: int = Field(1, ge=0, le=1_000_000)
    window: Window | None = None
    where: list[PropertyFilter] = Field(default_factory=list, max_length=10)


class OrdersCondition(Comparison):
    """An order metric from the customer's stats: count, revenue (minor units, net of refunds), average
    order value, first or last order time."""

    type: Literal["orders"]
    metric: Literal["count", "revenue", "average_order_value", "first_order_at", "last_order_at"]


class BoughtCondition(_Strict):
    """Bought a product (by SKU) or anything in a category, in `window` (none: ever). Refunded orders
    do not count."""

    type: Literal["bought"]
    sku: str | None = Field(None, min_length=1, max_length=255)
    category: str | None = Field(None, min_length=1, max_length=255)
    window: Window | None = None


class ScoreCondition(Comparison):
    """An analytics score (clm.analytics): RFM segment and scores, P(alive), predicted CLV, churn risk."""

    type: Literal["score"]
    field: Literal["rfm_segment", "r_score", "f_score", "m_score", "p_alive", "predicted_clv_12m", "churn_risk"]


class LoyaltyCondition(Comparison):
    """A loyalty figure (clm.loyalty): the member's `tier` (its key), `available` (redeemable) points,
    `lifetime` points (every credit ever earned) or the points `expiring` within `within_days` days.
    Customers outside the program have no tier and 0 points."""

    type: Literal["loyalty"]
    field: Literal["tier", "available", "lifetime", "expiring"]
    within_days: int | None = Field(None, ge=1, le=MAX_DAYS)


class ConsentCondition(_Strict):
    """The customer's decision in force for `channel` and `purpose` grants it."""

    type: Literal["consent"]
    channel: str = Field(min_length=1, max_length=32)
    purpose: str = Field("marketing", min_length=1, max_length=64)


class SegmentCondition(_Strict):
    """Is a current member of segment `segment_id` (dynamic segments are inlined; cycles are refused)."""

    type: Literal["segment"]
    segment_id: int = Field(ge=1)


class All(_Strict):
    all: list[Node] = Field(min_length=1)


class AnyOf(_Strict):
    any: list[Node] = Field(min_length=1)


class Not(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    not_: Node = Field(alias="not")


CONDITIONS: dict[str, type[BaseModel]] = {
    "profile": ProfileCondition, "stage": StageCondition, "stage_entered": StageEnteredCondition,
    "event": EventCondition, "orders": OrdersCondition, "bought": BoughtCondition, "score": ScoreCondition,
    "loyalty": LoyaltyCondition, "consent": ConsentCondition, "segment": SegmentCondition,
}
GROUPS = {"all": All, "any": AnyOf, "not": Not}


def _tag(value: Any) -> str | None:
    if isinstance(value, dict):
        for key in GROUPS:
            if key in value:
                return key
        return value.get("type")
    for key, model in {**GROUPS, **CONDITIONS}.items():
        if isinstance(value, model):
            return key
    return None


Node = Annotated[
    Union[tuple(Annotated[m, Tag(k)] for k, m in {**GROUPS, **CONDITIONS}.items())],  # noqa: UP007
    Discriminator(_tag),
]
Condition = Union[tuple(CONDITIONS.values())]  # noqa: UP007
for _model in (All, AnyOf, Not):
    _model.model_rebuild()
_node_adapter = TypeAdapter(Node)
RULES_SCHEMA: dict[str, Any] = _node_adapter.json_schema(by_alias=True)


# -- parsing with paths ------------------------------------------------------------------------------------

def parse_rules(data: Any, path: str = "rules") -> Node:
    """A checked rule tree from JSON data, or FieldError naming the path of the first problem."""
    counter = [0]
    return _parse(data, path, 0, counter)


def _parse(data: Any, path: str, depth: int, counter: list[int]) -> Any:
    if depth > MAX_DEPTH:
        raise FieldError(path, f"the rule tree is nested deeper than {MAX_DEPTH} levels")
    if not isinstance(data, dict):
        raise FieldError(path, "must be an object: a group ({\"all\": [...]}, {\"any\": [...]}, {\"not\": {...}}) "
                               "or a condition with a \"type\"")
    groups = [k for k in GROUPS if k in data]
    if groups:
        key = groups[0]
        if len(data) != 1:
            extra = sorted(set(data) - {key})[0]
            raise FieldError(f"{path}.{extra}", f"a {key!r} group holds nothing but {key!r}")
        if key == "not":
            return Not(**{"not": _parse(data["not"], f"{path}.not", depth + 1, counter)})
        items = data[key]
        if not isinstance(items, list) or not items:
            raise FieldError(f"{path}.{key}", "must be a non-empty list of rules")
        return GROUPS[key](**{key: [_parse(item, f"{path}.{key}[{i}]", depth + 1, counter)
                                    for i, item in enumerate(items)]})
    kind = data.get("type")
    if kind not in CONDITIONS:
        raise FieldError(f"{path}.type", f"unknown condition type {kind!r}; choose from {', '.join(CONDITIONS)} "
                                         "(or a group: all, any, not)")
    counter[0] += 1
    if counter[0] > MAX_CONDITIONS:
        raise FieldError(path, f"a rule tree holds at most {MAX_CONDITIONS} conditions")
    try:
        condition = CONDITIONS[kind].model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = _loc(err["loc"])
        message = "is not allowed here" if err["type"] == "extra_forbidden" else (
            "is required" if err["type"] == "missing" else err["msg"])
        raise FieldError(f"{path}.{where}" if where else path, message) from None
    _check(condition, path)
    return condition


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def field_type(condition: Any) -> str:
    """The value type a condition's comparison works on: string, number, date, datetime or bool."""
    if isinstance(condition, ProfileCondition):
        if condition.field.startswith("traits."):
            return _trait_type(condition)
        if condition.field in STRING_FIELDS:
            return "string"
        return "date" if condition.field in DATE_FIELDS else "datetime"
    if isinstance(condition, OrdersCondition):
        return ORDER_METRICS[condition.metric]
    if isinstance(condition, ScoreCondition):
        return SCORE_FIELDS[condition.field]
    if isinstance(condition, LoyaltyCondition):
        return LOYALTY_FIELDS[condition.field]
    if isinstance(condition, PropertyFilter):
        return _trait_type(condition)
    raise TypeError(condition)


def _trait_type(c: Comparison) -> str:
    """Traits and event properties are JSON: the operator and the value's JSON type say what is compared."""
    if c.op in ("is_true", "is_false"):
        return "bool"
    if c.op in ("gt", "gte", "lt", "lte", "between"):
        return "number"
    if c.op in ("contains", "not_contains", "starts_with", "ends_with"):
        return "string"
    values = c.value if isinstance(c.value, list) else [c.value]
    if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "number"
    return "string"


def _check(c: Any, path: str) -> None:
    if isinstance(c, ProfileCondition):
        if c.field.startswith("traits."):
            if not TRAIT_KEY.match(c.field[7:]):
                raise FieldError(f"{path}.field", "a trait name is 1-64 letters, digits, spaces, '_', '-' or '.'")
        elif c.field not in PROFILE_FIELDS:
            raise FieldError(f"{path}.field", f"unknown field {c.field!r}; choose from {', '.join(PROFILE_FIELDS)} "
                                              "or traits.<name>")
        _check_comparison(c, field_type(c), path)
    elif isinstance(c, OrdersCondition | ScoreCondition):
        _check_comparison(c, field_type(c), path)
    elif isinstance(c, LoyaltyCondition):
        if (c.field == "expiring") != (c.within_days is not None):
            raise FieldError(f"{path}.within_days", "is required for expiring points (and only for them): "
                                                    "the number of days ahead to count")
        _check_comparison(c, field_type(c), path)
    elif isinstance(c, EventCondition):
        _check_text(c.name, f"{path}.name")
        if c.window is not None:
            _check_window(c.window, f"{path}.window")
        for i, f in enumerate(c.where):
            where = f"{path}.where[{i}]"
            if not TRAIT_KEY.match(f.property):
                raise FieldError(f"{where}.property", "a property name is 1-64 letters, digits, spaces, '_', '-' "
                                                      "or '.'")
            _check_comparison(f, field_type(f), where)
    elif isinstance(c, BoughtCondition):
        if (c.sku is None) == (c.category is None):
            raise FieldError(f"{path}.sku", "give either a sku or a category")
        _check_text(c.sku or c.category, f"{path}.{'sku' if c.sku else 'category'}")
        if c.window is not None:
            _check_window(c.window, f"{path}.window")
    elif isinstance(c, StageCondition):
        for i, s in enumerate(c.stages):
            _check_text(s, f"{path}.stages[{i}]")
    elif isinstance(c, ConsentCondition):
        _check_text(c.channel, f"{path}.channel")
        _check_text(c.purpose, f"{path}.purpose")


def _check_window(w: Window, path: str) -> None:
    if w.last_days is not None and (w.since or w.until):
        raise FieldError(f"{path}.last_days", "give either last_days or since/until, not both")
    if w.since and w.until and w.since > w.until:
        raise FieldError(f"{path}.until", "is before since")


def _check_text(value: str, path: str) -> None:
    if "\x00" in value:
        raise FieldError(path, "contains a NUL character")
    if len(value) > MAX_TEXT:
        raise FieldError(path, f"is longer than {MAX_TEXT} characters")


def _check_comparison(c: Comparison, kind: str, path: str) -> None:
    ops = OPS_BY_TYPE[kind]
    if c.op not in ops:
        raise FieldError(f"{path}.op", f"{c.op!r} does not apply to a {kind} field; choose from {', '.join(ops)}")
    if c.op == "anniversary_within_days" and kind != "date":
        raise FieldError(f"{path}.op", "anniversary_within_days applies to dates such as the birthday")
    value, at = c.value, f"{path}.value"
    if c.op in ("exists", "not_exists", "is_true", "is_false"):
        if value is not None:
            raise FieldError(at, f"{c.op} takes no value")
        return
    if c.op in RELATIVE_OPS:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_DAYS:
            raise FieldError(at, f"must be a whole number of days from 0 to {MAX_DAYS}")
        return
    if c.op in ("in", "not_in"):
        if not isinstance(value, list) or not value or len(value) > MAX_ITEMS:
            raise FieldError(at, f"must be a list of 1 to {MAX_ITEMS} values")
        for i, v in enumerate(value):
            _check_scalar(v, kind, f"{at}[{i}]")
        return
    if c.op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise FieldError(at, "must be a list of two values [from, to]")
        low = _check_scalar(value[0], kind, f"{at}[0]")
        high = _check_scalar(value[1], kind, f"{at}[1]")
        if low > high:
            raise FieldError(f"{at}[1]", "is below the first value")
        return
    _check_scalar(value, kind, at)


def _check_scalar(v: Any, kind: str, at: str) -> Any:
    if kind == "string":
        if not isinstance(v, str):
            raise FieldError(at, "must be a string")
        _check_text(v, at)
        return v
    if kind == "number":
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or abs(v) > 2**53:
            raise FieldError(at, "must be a finite number")
        return v
    if kind in ("date", "datetime"):
        return as_date(v, at)
    raise FieldError(at, "takes no value")


def as_date(v: Any, at: str = "value") -> date:
    """A calendar date from "YYYY-MM-DD" (dates are whole days in the business time zone)."""
    if isinstance(v, date):
        return v
    if not isinstance(v, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
        raise FieldError(at, f"{v!r} is not a date; write it as YYYY-MM-DD")
    try:
        return date.fromisoformat(v)
    except ValueError:
        raise FieldError(at, f"{v!r} is not a real date") from None


# -- walking a tree ----------------------------------------------------------------------------------------

def conditions(node: Any):
    """Every condition in the tree, depth first."""
    if isinstance(node, All):
        for child in node.all:
            yield from conditions(child)
    elif isinstance(node, AnyOf):
        for child in node.any:
            yield from conditions(child)
    elif isinstance(node, Not):
        yield from conditions(node.not_)
    else:
        yield node


def dump_rules(node: Any) -> dict[str, Any]:
    """The tree as JSON data again (what is stored), without defaults left unset."""
    return _node_adapter.dump_python(node, mode="json", by_alias=True, exclude_none=True)
