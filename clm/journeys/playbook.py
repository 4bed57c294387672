"""The lifecycle playbook: ready journeys for every stage, each with its templates in Vietnamese and English.

Each play is a TOML file in `clm/journeys/playbook_files/`: the journey's name, a title and summary in
both languages, its definition (the same JSON graph as any journey) and the templates it sends (created
through clm.channels.templates). Installing is idempotent: a template whose key exists is left as it is
(the shop may have edited it), and a journey whose name exists is not created again. Journeys are
installed as drafts unless `activate` is asked for: a playbook should not message customers before
someone has read it.

A play may give loyalty vouchers (`[[vouchers]]`: the birthday gift, the win-back offer): on a shop with a
loyalty program, installing creates the reward (switched off: a gift only) and a step that gives each
customer their own single-use code, which the templates show as `{{ voucher.code }}`; without a program the
play installs with its shared code (WELCOME10-style, for the shop's checkout) and says so in a note.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.journeys import service
from clm.journeys.models import Journey
from clm.lib.clock import utcnow
from clm.lib.errors import FieldError, NotFound

FILES = "clm.journeys.playbook_files"


@dataclass(frozen=True)
class Play:
    key: str
    order: int
    name: str  # the journey's name once installed (how a second install finds it)
    title: dict[str, str]  # {"vi": ..., "en": ...}
    summary: dict[str, str]
    definition: dict[str, Any]
    templates: list[dict[str, Any]] = field(default_factory=list)
    vouchers: list[dict[str, Any]] = field(default_factory=list)  # steps that give a loyalty voucher, see below

    @property
    def description(self) -> str:
        return f"{self.summary['vi']}\n\n{self.summary['en']}"

    @property
    def template_keys(self) -> list[str]:
        return [t["key"] for t in self.templates]


@dataclass
class Installed:
    key: str
    status: str  # installed | exists | failed
    journey_id: int | None = None
    state: str | None = None
    templates_created: list[str] = field(default_factory=list)
    error: str | None = None
    note: str | None = None  # e.g. no loyalty program: the shared code instead of a voucher per customer
    shared_codes: list[str] = field(default_factory=list)  # the codes given instead of vouchers, if any


@lru_cache(maxsize=1)
def plays() -> tuple[Play, ...]:
    """Every play, in the order of the customer's lifecycle."""
    out = []
    for entry in resources.files(FILES).iterdir():
        if not entry.name.endswith(".toml"):
            continue
        data = tomllib.loads(entry.read_text(encoding="utf-8"))
        out.append(Play(key=data["key"], order=data["order"], name=data["name"], title=data["title"],
                        summary=data["summary"], definition=data["definition"], templates=data.get("templates", []),
                        vouchers=data.get("vouchers", [])))
    return tuple(sorted(out, key=lambda p: p.order))


def find_play(key: str, field: str = "key") -> Play:
    """The play `key`, or FieldError on `field` listing the keys there are."""
    for play in plays():
        if play.key == key:
            return play
    raise FieldError(field, f"no playbook journey is called {key!r}; choose from {', '.join(p.key for p in plays())}")


def with_vouchers(play: Play, reward_ids: dict[str, int]) -> dict[str, Any]:
    """The play's definition with its voucher steps: each `[[vouchers]]` entry either `replace`s a node (the
    step a shop without a loyalty program runs instead, e.g. keeping the shared code on the profile) or is
    put `before` one (what led there leads to it first). `reward_ids` maps each entry's node id to the
    loyalty reward it gives."""
    definition = copy.deepcopy(play.definition)
    nodes = definition["nodes"]
    for spec in play.vouchers:
        node_id = spec.get("replace") or spec["id"]
        voucher = {"id": node_id, "type": "issue_voucher", "label": spec.get("label", ""),
                   "reward_id": reward_ids[node_id]}
        if "replace" in spec:
            k = next(k for k, n in enumerate(nodes) if n["id"] == node_id)
            nodes[k] = {**voucher, "next": nodes[k]["next"]}
            continue
        target = spec["before"]
        for node in nodes:
            for key in ("next", "yes", "no", "timeout_next"):
                if node.get(key) == target:
                    node[key] = node_id
            for branch in node.get("branches", []):
                if branch.get("next") == target:
                    branch["next"] = node_id
        if definition["start"] == target:
            definition["start"] = node_id
        nodes.insert(next(k for k, n in enumerate(nodes) if n["id"] == target), {**voucher, "next": target})
    return definition


def _gift_reward(session: Session, spec: dict[str, Any]) -> int:
    """The loyalty reward a voucher step gives, found by name or created switched off (a gift only: members
    cannot buy it with points; the shop may change its value, stock or dates)."""
    from clm.loyalty.models import Reward
    from clm.loyalty.rewards import RewardIn, save_reward

    found = session.scalar(sa.select(Reward.id).where(Reward.name == spec["name"]).order_by(Reward.id).limit(1))
    return found if found is not None else save_reward(session, RewardIn(**spec, active=False)).id


def _definition(session: Session, play: Play) -> tuple[dict[str, Any], str | None]:
    """The definition to install and a note: with a loyalty program, the voucher steps give each customer
    their own code; without one, the shared codes stay (and the note says so)."""
    from clm.loyalty.program import get_program

    if not play.vouchers:
        return play.definition, None
    if get_program(session) is None:
        codes = ", ".join(spec["shared_code"] for spec in play.vouchers)
        return play.definition, (f"no loyalty program: the messages give the shared code {codes}, not a voucher "
                                 "per customer (set up the program, then add a 'Give a voucher' step)")
    ids = {spec.get("replace") or spec["id"]: _gift_reward(session, spec["reward"]) for spec in play.vouchers}
    return with_vouchers(play, ids), None


def installed_journeys(session: Session) -> dict[str, Journey]:
    """The installed plays' journeys by play key (found by name)."""
    names = {p.name: p.key for p in plays()}
    return {names[j.name]: j for j in session.scalars(sa.select(Journey).where(Journey.name.in_(list(names))))}


def install(session: Session, keys: list[str] | None = None, *, activate: bool = False, now: datetime | None = None,
            timezone: str = "Asia/Ho_Chi_Minh") -> list[Installed]:
    """Install the plays named by `keys` (all when None): their missing templates, then their journey if no
    journey has its name (activated when asked). A play that cannot be installed (e.g. the lifecycle rules
    have no stage it names) is reported `failed` with the reason and the others go on. The caller commits."""
    from clm.channels.models import Template
    from clm.channels.templates import create_template

    now = now or utcnow()
    chosen = list(plays()) if keys is None else [find_play(k, "keys") for k in dict.fromkeys(keys)]
    if keys is not None and not chosen:
        raise FieldError("keys", "name at least one playbook journey, or install them all")
    results = []
    for play in chosen:
        result = Installed(play.key, "exists")
        try:
            with session.begin_nested():
                existing = set(session.scalars(sa.select(Template.key).where(Template.key.in_(play.template_keys))))
                for t in play.templates:
                    if t["key"] not in existing:
                        create_template(session, key=t["key"], channel=t["channel"], variants=t["variants"],
                                        provider=t.get("provider"), name=t.get("name", ""), created_by="playbook")
                        result.templates_created.append(t["key"])
                journey = session.scalar(sa.select(Journey).where(Journey.name == play.name))
                if journey is None:
                    definition, result.note = _definition(session, play)
                    result.shared_codes = [v["shared_code"] for v in play.vouchers] if result.note else []
                    journey = service.save_journey(session, name=play.name, definition=definition,
                                                   description=play.description, now=now)
                    result.status = "installed"
                    if activate:
                        service.activate(session, journey.id, now=now, timezone=timezone)
                result.journey_id, result.state = journey.id, journey.state
        except (FieldError, NotFound) as exc:
            result = Installed(play.key, "failed", error=str(exc))
        results.append(result)
    return results
