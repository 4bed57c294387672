"""Pipelines: the stages a deal goes through, as the business defines them, each with a win probability.

Every pipeline has open stages in order, exactly one won stage (100 %) and one lost stage (0 %). A
default pipeline is made on first use. Saving a pipeline keeps the ids of stages whose key stays, so
opportunities keep their place; a stage that still holds open opportunities cannot be removed.
"""

from __future__ import annotations

import re
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from clm.db.upsert import insert_for
from clm.lib.clock import utcnow
from clm.lib.errors import FieldError, NotFound
from clm.sales.errors import SalesConflict
from clm.sales.models import Opportunity, Pipeline, PipelineStage

_KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
DEFAULT_NAME = "Bán hàng"
DEFAULT_STAGES = [
    {"key": "new", "name": {"vi": "Mới", "en": "New"}, "probability": 10},
    {"key": "qualified", "name": {"vi": "Đã xác định nhu cầu", "en": "Qualified"}, "probability": 25},
    {"key": "proposal", "name": {"vi": "Đã gửi báo giá", "en": "Proposal sent"}, "probability": 50},
    {"key": "negotiation", "name": {"vi": "Thương lượng", "en": "Negotiation"}, "probability": 75},
    {"key": "won", "name": {"vi": "Thành công", "en": "Won"}, "probability": 100, "kind": "won"},
    {"key": "lost", "name": {"vi": "Thất bại", "en": "Lost"}, "probability": 0, "kind": "lost"},
]


class StageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(description="lower-case letters, digits and _; keeps the stage's identity across edits")
    name: dict[str, str] = Field(default_factory=dict, description='{"vi": ..., "en": ...}')
    probability: int = Field(ge=0, le=100, description="Chance of winning a deal at this stage, in percent.")
    kind: Literal["open", "won", "lost"] = "open"

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not _KEY.match(value):
            raise ValueError("use lower-case letters, digits and _, starting with a letter (at most 32)")
        return value


class PipelineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=120)
    is_default: bool = False
    stages: list[StageIn] = Field(min_length=3)

    @field_validator("stages")
    @classmethod
    def _shape(cls, stages: list[StageIn]) -> list[StageIn]:
        keys = [s.key for s in stages]
        if len(set(keys)) != len(keys):
            raise ValueError("stage keys must be unique")
        kinds = [s.kind for s in stages]
        if kinds.count("won") != 1 or kinds.count("lost") != 1 or "open" not in kinds:
            raise ValueError("a pipeline needs open stages, one won stage and one lost stage")
        for stage in stages:
            if stage.kind == "won" and stage.probability != 100 or stage.kind == "lost" and stage.probability != 0:
                raise ValueError(f"stage {stage.key!r}: a won stage is 100 % and a lost stage 0 %")
        return stages


def get_pipeline(session: Session, pipeline_id: int) -> Pipeline:
    pipeline = session.get(Pipeline, pipeline_id)
    if pipeline is None:
        raise NotFound("pipeline", pipeline_id)
    return pipeline


def stages_of(session: Session, pipeline_id: int) -> list[PipelineStage]:
    return list(session.scalars(sa.select(PipelineStage).where(PipelineStage.pipeline_id == pipeline_id)
                                .order_by(PipelineStage.position)))


def list_pipelines(session: Session) -> list[Pipeline]:
    default_pipeline(session)
    return list(session.scalars(sa.select(Pipeline).order_by(Pipeline.is_default.desc(), Pipeline.id)))


def default_pipeline(session: Session) -> Pipeline:
    """The default pipeline, made with the standard stages the first time it is needed."""
    pipeline = session.scalar(sa.select(Pipeline).where(Pipeline.is_default.is_(True)).limit(1))
    if pipeline is not None:
        return pipeline
    now = utcnow()
    # Two first uses at once: the unique name lets one insert win; the other reads it.
    new_id = session.scalar(insert_for(session, Pipeline.__table__).values(
        name=DEFAULT_NAME, is_default=True, created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["name"]).returning(Pipeline.__table__.c.id))
    if new_id is not None:
        _write_stages(session, new_id, [StageIn(**s) for s in DEFAULT_STAGES])
    pipeline = session.scalar(sa.select(Pipeline).where(Pipeline.name == DEFAULT_NAME))
    if not pipeline.is_default:
        pipeline.is_default = True
        session.flush()
    return pipeline


def _write_stages(session: Session, pipeline_id: int, stages: list[StageIn]) -> None:
    existing = {s.key: s for s in stages_of(session, pipeline_id)}
    wanted = {s.key for s in stages}
    for key, row in existing.items():
        if key in wanted:
            continue
        busy = session.scalar(sa.select(sa.func.count()).select_from(Opportunity).where(Opportunity.stage_id == row.id))
        if busy:
            raise SalesConflict("stage_in_use", f"stage {key!r} holds {busy} opportunities; move them first", "stages")
        session.delete(row)
    session.flush()
    for position, stage in enumerate(stages):
        row = existing.get(stage.key)
        if row is None:
            row = PipelineStage(pipeline_id=pipeline_id, key=stage.key)
            session.add(row)
        row.name, row.position, row.probability, row.kind = stage.name, position, stage.probability, stage.kind
    session.flush()


def save_pipeline(session: Session, data: PipelineIn, pipeline_id: int | None = None) -> Pipeline:
    """Create a pipeline, or replace an existing one's name and stages (matched by key)."""
    clash = session.scalar(sa.select(Pipeline.id).where(Pipeline.name == data.name))
    if clash is not None and clash != pipeline_id:
        raise FieldError("name", f"another pipeline is called {data.name!r}")
    now = utcnow()
    if pipeline_id is None:
        pipeline = Pipeline(name=data.name, is_default=False, created_at=now, updated_at=now)
        session.add(pipeline)
        session.flush()
    else:
        pipeline = get_pipeline(session, pipeline_id)
        pipeline.name, pipeline.updated_at = data.name, now
    if data.is_default and not pipeline.is_default:
        session.execute(sa.update(Pipeline).where(Pipeline.id != pipeline.id).values(is_default=False))
        pipeline.is_default = True
    _write_stages(session, pipeline.id, data.stages)
    return pipeline


def stage_by(session: Session, pipeline_id: int, key: str | int, field: str = "stage") -> PipelineStage:
    """A stage of this pipeline by key or id; a FieldError naming `field` for any other."""
    query = sa.select(PipelineStage).where(PipelineStage.pipeline_id == pipeline_id)
    if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
        query = query.where(PipelineStage.id == int(key))
    else:
        query = query.where(PipelineStage.key == key)
    stage = session.scalar(query)
    if stage is None:
        keys = ", ".join(s.key for s in stages_of(session, pipeline_id))
        raise FieldError(field, f"{key!r} is not a stage of this pipeline (its stages: {keys})", "unknown_stage")
    return stage


def closing_stage(session: Session, pipeline_id: int, kind: str) -> PipelineStage:
    return session.scalar(sa.select(PipelineStage).where(PipelineStage.pipeline_id == pipeline_id,
                                                         PipelineStage.kind == kind))
