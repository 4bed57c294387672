"""The customers API: /api/v1/customers. A thin adapter over clm.customers.service and .consent.

A merged customer's id answers reads with 308 to the customer it was merged into, and writes with
409 (a write to the wrong profile should be a decision, not a redirect). Both bodies name
`merged_into_id`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import sqlalchemy.exc
from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session

from clm.commerce.schemas import OrderOut
from clm.customers import consent, service
from clm.customers.schemas import (
    ConsentIn,
    ConsentList,
    ConsentOut,
    CustomerCreate,
    CustomerDetail,
    CustomerOut,
    CustomerPage,
    CustomerUpdate,
    TimelineEntry,
    TimelinePage,
)
from clm.db.engine import for_writing
from clm.tracking.events_schemas import EventOut
from clm.web.api_docs import Cursor, Id, Instant, Limit, error_responses, text_param
from clm.web.deps import get_session, require_scope
from clm.web.errors import ApiError

router = APIRouter(prefix="/customers", tags=["customers"])
read = Depends(require_scope("customers:read"))
write = Depends(require_scope("customers:write"))


@contextmanager
def _answers(request: Request, *, reading: bool) -> Iterator[None]:
    """Turn the service's Merged and Conflict into HTTP answers."""
    try:
        yield
    except service.Merged as exc:
        if reading:
            location = request.url.path.replace(f"/customers/{exc.customer_id}", f"/customers/{exc.winner_id}", 1)
            if request.url.query:
                location += "?" + request.url.query
            raise ApiError(308, "merged", str(exc), headers={"Location": location},
                           merged_into_id=exc.winner_id) from None
        raise ApiError(409, "merged", f"{exc}; send the request for customer {exc.winner_id}",
                       merged_into_id=exc.winner_id) from None
    except service.Conflict as exc:
        raise ApiError(409, "conflict", str(exc), exc.field, customer_id=exc.owner_id) from None


@contextmanager
def _writing(session: Session) -> Iterator[None]:
    """One write transaction (SQLite: BEGIN IMMEDIATE), committed when the block succeeds."""
    session.commit()  # end the read that checked the API key
    for_writing(session)
    try:
        yield
        session.commit()
    except sqlalchemy.exc.IntegrityError:
        # A concurrent request took the same email, phone or id between our check and our write.
        session.rollback()
        raise ApiError(409, "conflict", "another request changed this customer at the same time; retry") from None
    except BaseException:
        session.rollback()
        raise


def _detail(session: Session, customer) -> CustomerDetail:
    return CustomerDetail(
        **CustomerOut.model_validate(customer).model_dump(),
        identities=service.identities_of(session, customer.id),
        consents=consent.current_consents(session, customer.id),
    )


def _region(request: Request) -> str:
    return request.app.state.settings.default_region


@router.get("", response_model=CustomerPage, summary="List and search customers",
            responses=error_responses(422), dependencies=[read])
def list_customers(
    request: Request,
    q: Annotated[str | None, text_param(
        "Search name, email, phone and external id, ignoring case and Vietnamese diacritics; "
        "every word must match (\"nguyen van a\" finds \"Nguyễn Văn A\", \"0912345678\" finds +84912345678).",
        200)] = None,
    stage: Annotated[str | None, text_param("Lifecycle stage, exactly.", 32)] = None,
    city: Annotated[str | None, text_param("City, exactly as stored.", 128)] = None,
    email: Annotated[str | None, text_param("Email address (normalised before matching).", 320)] = None,
    phone: Annotated[str | None, text_param("Phone number in any format (normalised to E.164).", 64)] = None,
    has_orders: Annotated[bool | None, Query(description="true: customers with an order; false: without.")] = None,
    created_since: Annotated[Instant | None, Query(description="Created at or after (ISO 8601).")] = None,
    created_until: Annotated[Instant | None, Query(description="Created before.")] = None,
    seen_since: Annotated[Instant | None, Query(description="Last seen at or after.")] = None,
    seen_until: Annotated[Instant | None, Query(description="Last seen before.")] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
    session: Session = Depends(get_session),
) -> CustomerPage:
    """Live customers (merged profiles are left out), newest first, in pages of `limit`."""
    rows, next_cursor = service.list_customers(
        session, q=q, stage=stage, city=city, email=email, phone=phone, has_orders=has_orders,
        created_since=created_since, created_until=created_until, seen_since=seen_since, seen_until=seen_until,
        after=cursor, limit=limit, region=_region(request),
    )
    return CustomerPage(data=[CustomerOut.model_validate(c) for c in rows], next=next_cursor)


@router.post("", response_model=CustomerDetail, status_code=201, summary="Create a customer",
             responses=error_responses(409, 422), dependencies=[write])
def create_customer(body: CustomerCreate, request: Request, response: Response,
                    session: Session = Depends(get_session)) -> CustomerDetail:
    """Create a customer; at least one of user_id, email, phone or external_id is needed."""
    with _writing(session), _answers(request, reading=False):
        customer = service.create_customer(session, body.model_dump(exclude_unset=True), _region(request))
    response.headers["Location"] = f"{request.url.path}/{customer.id}"
    return _detail(session, customer)


@router.get("/{customer_id}", response_model=CustomerDetail, summary="Get a customer",
            responses=error_responses(308, 404, 422), dependencies=[read])
def get_customer(customer_id: Id, request: Request, session: Session = Depends(get_session)) -> CustomerDetail:
    """The profile with its identities and the consents in force."""
    with _answers(request, reading=True):
        customer = service.get_customer(session, customer_id)
    return _detail(session, customer)


@router.patch("/{customer_id}", response_model=CustomerDetail, summary="Change a customer",
              responses=error_responses(404, 409, 422), dependencies=[write])
def update_customer(customer_id: Id, body: CustomerUpdate, request: Request,
                    session: Session = Depends(get_session)) -> CustomerDetail:
    """Change the fields sent (null clears one; a custom trait sent as null is removed)."""
    with _writing(session), _answers(request, reading=False):
        customer = service.update_customer(session, customer_id, body.model_dump(exclude_unset=True),
                                           _region(request))
    return _detail(session, customer)


@router.delete("/{customer_id}", status_code=204, response_class=Response, summary="Delete a customer and all their data",
               responses=error_responses(404, 409, 422), dependencies=[write])
def delete_customer(customer_id: Id, request: Request, session: Session = Depends(get_session)) -> Response:
    """Erase the profile, identities, consents, events, orders and everything else held about them."""
    with _writing(session), _answers(request, reading=False):
        service.delete_customer(session, customer_id)
    return Response(status_code=204)


@router.get("/{customer_id}/timeline", response_model=TimelinePage, summary="A customer's events and orders",
            responses=error_responses(308, 404, 422), dependencies=[read])
def timeline(customer_id: Id, request: Request, cursor: Cursor = None, limit: Limit = 50,
             session: Session = Depends(get_session)) -> TimelinePage:
    """Events and orders in one list, newest first. An order replaces the "Order Completed" event that made it."""
    with _answers(request, reading=True):
        entries, next_cursor = service.timeline(session, customer_id, after=cursor, limit=limit)
    data = [
        TimelineEntry(kind=kind, at=at, event=EventOut.model_validate(row) if kind == "event" else None,
                      order=OrderOut.model_validate(row) if kind == "order" else None)
        for kind, at, row in entries
    ]
    return TimelinePage(data=data, next=next_cursor)


@router.get("/{customer_id}/consents", response_model=ConsentList, summary="A customer's consents",
            responses=error_responses(308, 404, 422), dependencies=[read])
def list_consents(customer_id: Id, request: Request, session: Session = Depends(get_session)) -> ConsentList:
    """The decisions in force (latest per channel and purpose) and the whole history, newest first."""
    with _answers(request, reading=True):
        service.get_customer(session, customer_id)
    history = consent.consent_history(session, customer_id)
    return ConsentList(current=consent.current_consents(session, customer_id, history), history=history)


@router.post("/{customer_id}/consents", response_model=ConsentOut, status_code=201, summary="Record a consent decision",
             responses=error_responses(404, 409, 422), dependencies=[write])
def record_consent(customer_id: Id, body: ConsentIn, request: Request,
                   session: Session = Depends(get_session)) -> ConsentOut:
    """Record that the customer granted (or refused, or withdrew) consent for a channel and purpose."""
    with _writing(session), _answers(request, reading=False):
        service.get_customer(session, customer_id, for_update=True)
        row = consent.record_consent(session, customer_id, **body.model_dump())
    return ConsentOut.model_validate(row)
