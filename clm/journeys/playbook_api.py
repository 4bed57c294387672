"""/api/v1/journeys/playbook: the lifecycle playbook's ready journeys, listed and installed in one call
(what the dashboard's "install" button posts). A thin adapter over clm.journeys.playbook."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from clm.db.engine import for_writing
from clm.journeys import playbook
from clm.web.api_docs import error_responses
from clm.web.deps import get_session, require_scope

router = APIRouter(prefix="/playbook")
read = Depends(require_scope("journeys:read"))
write = Depends(require_scope("journeys:write"))


class PlayOut(BaseModel):
    key: str
    name: str = Field(description="The journey's name once installed.")
    title: dict[str, str] = Field(description="By language: vi, en.")
    summary: dict[str, str]
    trigger: str
    templates: list[str] = Field(description="The template keys it sends (created on install when missing).")
    journey_id: int | None = Field(description="The installed journey, or null.")
    state: str | None


class PlaybookOut(BaseModel):
    data: list[PlayOut]


class InstallIn(BaseModel):
    keys: list[str] | None = Field(None, max_length=50, description="Playbook keys to install; null: all of them.")
    activate: bool = Field(False, description="Activate what is installed now (default: drafts to review).")


class InstalledOut(BaseModel):
    key: str
    status: str = Field(description="installed, exists (left as it is) or failed.")
    journey_id: int | None
    state: str | None
    templates_created: list[str]
    error: str | None
    note: str | None = Field(None, description="What to know, e.g. without a loyalty program the play gives its "
                             "shared code instead of a voucher per customer.")
    shared_codes: list[str] = Field(default_factory=list, description="Those shared codes (for the shop's checkout).")


class InstallOut(BaseModel):
    data: list[InstalledOut]


@router.get("", response_model=PlaybookOut, summary="The playbook's journeys and whether each is installed",
            dependencies=[read], responses=error_responses(422))
def list_plays(session: Session = Depends(get_session)) -> PlaybookOut:
    installed = playbook.installed_journeys(session)
    return PlaybookOut(data=[PlayOut(key=p.key, name=p.name, title=p.title, summary=p.summary,
                                     trigger=p.definition["trigger"]["type"], templates=p.template_keys,
                                     journey_id=installed[p.key].id if p.key in installed else None,
                                     state=installed[p.key].state if p.key in installed else None)
                             for p in playbook.plays()])


@router.post("/install", response_model=InstallOut, summary="Install playbook journeys (idempotent)",
             dependencies=[write], responses=error_responses(422))
def install(body: InstallIn, request: Request, session: Session = Depends(get_session)) -> InstallOut:
    for_writing(session)
    results = playbook.install(session, body.keys, activate=body.activate,
                               timezone=request.app.state.settings.timezone)
    session.commit()
    return InstallOut(data=[InstalledOut(**vars(r)) for r in results])
