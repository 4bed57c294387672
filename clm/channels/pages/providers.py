"""The channel settings page: which channels are configured (from settings; secrets are never shown,
only whether they are set) and a "send test" button per channel, sent by the worker."""

from __future__ import annotations

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from clm.channels import testsend
from clm.channels.configured import describe_channels
from clm.channels.models import CHANNELS
from clm.channels.pages.common import allowed, fragment_of_test, page, settings_of
from clm.channels.templates import list_templates
from clm.db.engine import for_writing
from clm.lib.errors import FieldError
from clm.web import i18n
from clm.web.deps import get_session
from clm.web.pages.base import dashboard_router, form_data

router = dashboard_router()


@router.get("/channels/providers")
def providers_page(request: Request, user=Depends(allowed), db: Session = Depends(get_session)):
    settings = settings_of(request)
    return page(request, "channels/providers.html", "providers", channels=describe_channels(settings),
                zalo_templates=list_templates(db, "zalo"), default_to={"email": user.email},
                public_url=settings.public_url)


@router.post("/channels/providers/test")
def send_check(request: Request, form: dict = Depends(form_data), user=Depends(allowed),
               db: Session = Depends(get_session)):
    """Queue a test on one channel: a short check message, or for Zalo the chosen ZNS template."""
    settings = settings_of(request)
    channel, to = str(form.get("channel", "")), str(form.get("to", ""))
    for_writing(db)
    try:
        if channel not in CHANNELS:
            raise FieldError("channel", f"must be one of {', '.join(CHANNELS)}")
        template_key = str(form.get("template_key") or "")
        if template_key:
            content = testsend.render_test(db, template_key=template_key, settings=settings)
            if content["channel"] != channel:
                raise FieldError("template_key", f"the template is for {content['channel']}, not {channel}")
        else:
            content = testsend.check_content(channel, i18n.pick_locale(request, user))
        job = testsend.queue_test(db, content, to, requested_by=user.email, settings=settings)
        db.commit()
    except FieldError as exc:
        db.rollback()
        return fragment_of_test(request, None, error=f"{exc.field}: {exc.message}" if exc.field else exc.message)
    return fragment_of_test(request, job.id, state=job.state, to=job.args["to"])
