"""A file a customer sent, downloaded from the workspace (permission `service`, as the ticket it is on).

`GET /service/attachments/{id}`: the bytes as a download with a safe type (clm.service.attachments); an
unknown id is the dashboard's 404 page.
"""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from clm.lib.errors import NotFound
from clm.service.attachments import download
from clm.service.models import MAX_ID
from clm.web.auth import require
from clm.web.deps import get_session
from clm.web.pages.base import dashboard_router
from clm.web.pages.errors import not_found_page

router = dashboard_router()


@router.get("/service/attachments/{attachment_id}")
def attachment_download(request: Request, attachment_id: int, user=Depends(require("service")),
                        db: Session = Depends(get_session)) -> Response:
    if not 1 <= attachment_id <= MAX_ID:
        return not_found_page(request)
    try:
        file = download(db, attachment_id)
    except NotFound:
        return not_found_page(request)
    return Response(file.data, media_type=file.media_type, headers=file.headers)
