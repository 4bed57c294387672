"""The lifecycle rule file: stages and the rules that move customers between them, as typed data.

Rules are data the business edits (TOML). Conditions are a small vocabulary of per-customer facts
compared with numbers; nothing in the file is ever evaluated as code or pasted into SQL.
"""

from __future__ import annotations

import re
import tomllib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from clm.lib.errors import FieldError

COUNT_FACTS = ("orders_count", "revenue", "refunded_orders")
DAY_FACTS = ("days_since_last_order", "days_since_first_order", "days_since_last_event")
Op = Literal[">=", ">", "<=", "<", "="]
_COMPARISON = re.compile(r"^\s*(>=|<=|>|<|==|=)?\s*(\d+(?:\.\d+)?)\s*(gaps?)?\s*$")
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


class Comparison(BaseModel):
    """`op value [gaps]`: e.g. ">= 2", "> 4 gaps" (gaps: multiples of the customer's usual gap)."""

    model_config = ConfigDict(frozen=True)
    op: Op
    value: float
    gaps: bool = False

    @classmethod
    def parse(cls, text: str | int | float, *, days: bool) -> Comparison:
        if isinstance(text, bool):
            raise ValueError("write a comparison such as \">= 2\"")
        if isinstance(text, int | float):
            return cls(op=">=", value=float(text))
        match = _COMPARISON.match(text)
        if not match:
            raise ValueError(f"{text!r} is not a comparison; write e.g. \">= 2\"" + (" or \"> 4 gaps\"" if days else ""))
        op, value, gaps = match.groups()
        if gaps and not days:
            raise ValueError("only day counts (days_since_...) can be measured in gaps")
        return cls(op={"==": "="}.get(op, op) or ">=", value=float(value), gaps=bool(gaps))

    def __str__(self) -> str:
        value = int(self.value) if self.value.is_integer() else self.value
        return f"{self.op} {value}{' gaps' if self.gaps else ''}"


class EventsCondition(BaseModel):
    """At least `at_least` tracked events named one of `names`, within the last `within_days` (or ever)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    names: Annotated[list[Annotated[str, Field(min_length=1, max_length=255)]], Field(min_length=1)]
    at_least: int = Field(1, ge=1)
    within_days: int | None = Field(None, ge=1)


class Conditions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    orders_count: Comparison | None = None
    revenue: Comparison | None = None
    refunded_orders: Comparison | None = None
    days_since_last_order: Comparison | None = None
    days_since_first_order: Comparison | None = None
    days_since_last_event: Comparison | None = None
    events: EventsCondition | None = None

    @field_validator(*COUNT_FACTS, mode="before")
    @classmethod
    def _count(cls, value):
        return Comparison.parse(value, days=False) if isinstance(value, str | int | float) else value

    @field_validator(*DAY_FACTS, mode="before")
    @classmethod
    def _days(cls, value):
        return Comparison.parse(value, days=True) if isinstance(value, str | int | float) else value

    def comparisons(self) -> list[tuple[str, Comparison]]:
        return [(f, getattr(self, f)) for f in (*COUNT_FACTS, *DAY_FACTS) if getattr(self, f) is not None]


class Stage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    key: str = Field(min_length=1, max_length=32)
    name: dict[str, str] = Field(default_factory=dict)
    funnel: bool = False

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not _KEY.match(value):
            raise ValueError("use lower-case letters, digits and underscores, starting with a letter")
        return value

    def label(self, locale: str) -> str:
        return self.name.get(locale) or self.name.get(locale.split("_")[0]) or self.name.get("en") or self.key


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    name: str = Field(min_length=1, max_length=64)
    stage: str
    from_: list[str] | None = Field(None, alias="from")
    when: Conditions = Field(default_factory=Conditions)


class RuleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    default_gap_days: float = Field(30, gt=0)
    min_gap_days: float = Field(7, ge=0)


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    settings: RuleSettings = Field(default_factory=RuleSettings)
    stages: Annotated[list[Stage], Field(min_length=1)]
    rules: Annotated[list[Rule], Field(min_length=1)]

    @model_validator(mode="after")
    def _references(self) -> RuleSet:
        keys = [s.key for s in self.stages]
        for i, key in enumerate(keys):
            if key in keys[:i]:
                raise _at(f"stages[{i}].key", f"stage {key!r} is listed twice")
        names = set()
        for i, rule in enumerate(self.rules):
            if rule.name in names:
                raise _at(f"rules[{i}].name", f"rule {rule.name!r} is listed twice")
            names.add(rule.name)
            if rule.stage not in keys:
                raise _at(f"rules[{i}].stage", f"unknown stage {rule.stage!r}; the stages are {', '.join(keys)}")
            for j, key in enumerate(rule.from_ or []):
                if key not in keys:
                    raise _at(f"rules[{i}].from[{j}]", f"unknown stage {key!r}; the stages are {', '.join(keys)}")
        return self

    @property
    def keys(self) -> list[str]:
        return [s.key for s in self.stages]

    @property
    def funnel_stages(self) -> list[str]:
        return [s.key for s in self.stages if s.funnel]

    def stage(self, key: str) -> Stage:
        return next(s for s in self.stages if s.key == key)

    def rule(self, name: str) -> Rule:
        return next(r for r in self.rules if r.name == name)


class _Located(ValueError):
    def __init__(self, loc: str, message: str):
        super().__init__(message)
        self.loc = loc


def _at(loc: str, message: str) -> _Located:
    return _Located(loc, message)


def _location(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in ("function-after[_references(), RuleSet]",):
            out += ("." if out else "") + ("from" if part == "from_" else str(part))
    return out


def parse_rules(text: str, source: str = "rule file") -> RuleSet:
    """Read a rule file's text; a mistake is a FieldError naming the key (e.g. "rules[2].when.orders_count")."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FieldError(None, f"{source} is not valid TOML: {exc}") from None
    try:
        return RuleSet.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, _Located):
            raise FieldError(cause.loc, str(cause)) from None
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "is not a known key here"
        raise FieldError(_location(error["loc"]) or None, message) from None


def load_rules(path: Path | str | None = None) -> RuleSet:
    """The business's rule file at `path`, or the built-in stage model when `path` is None."""
    if path is None:
        return _default_rules()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FieldError("CLM_LIFECYCLE_RULES", f"cannot read {path}: {exc.strerror}") from None
    return parse_rules(text, str(path))


@lru_cache
def _default_rules() -> RuleSet:
    return parse_rules(resources.files("clm.lifecycle").joinpath("default_rules.toml").read_text("utf-8"),
                       "default_rules.toml")


_loaded: dict[tuple[str, float], RuleSet] = {}


def current_rules(settings=None) -> RuleSet:
    """The rules in force: CLM_LIFECYCLE_RULES if set (re-read when the file changes), else the default."""
    from clm.config import get_settings

    path = (settings or get_settings()).lifecycle_rules
    if path is None:
        return _default_rules()
    try:
        key = (str(path), Path(path).stat().st_mtime)
    except OSError:
        return load_rules(path)  # raises the clear error
    if key not in _loaded:
        _loaded.clear()
        _loaded[key] = load_rules(path)
    return _loaded[key]
