"""Identity resolution does not depend on how messages are split into requests."""

from datetime import UTC, datetime

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clm.customers.models import Customer, Identity
from clm.tracking.ingest import ingest
from clm.tracking.models import Event

NOW = datetime(2026, 11, 1, tzinfo=UTC)

users = st.sampled_from(["u1", "u2", "u3"])
anons = st.sampled_from(["a1", "a2", "a3", "a4"])
message = st.one_of(
    st.builds(lambda a: {"type": "track", "anonymousId": a, "event": "Product Viewed"}, anons),
    st.builds(lambda u: {"type": "track", "userId": u, "event": "Signed In"}, users),
    st.builds(lambda u, a: {"type": "identify", "userId": u, "anonymousId": a}, users, anons),
    st.builds(lambda a, u: {"type": "alias", "previousId": a, "userId": u}, anons, users),
)


def _partition(db) -> set[frozenset[str]]:
    groups: dict[int, set[str]] = {}
    for customer_id, value in db.execute(sa.select(Identity.customer_id, Identity.value)):
        groups.setdefault(customer_id, set()).add(value)
    return {frozenset(g) for g in groups.values()}


def _run(db, messages, cuts):
    for i, m in enumerate(messages):
        m["messageId"] = f"m{i}"
        m["timestamp"] = NOW.isoformat()
    bounds = sorted({0, len(messages), *[c % (len(messages) + 1) for c in cuts]})
    for start, end in zip(bounds, bounds[1:], strict=False):
        ingest(db, [dict(m) for m in messages[start:end]], received_at=NOW)
        db.flush()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(message, min_size=1, max_size=12), cuts=st.lists(st.integers(0, 12), max_size=4))
def test_the_same_messages_give_the_same_customers_however_they_are_batched(db, messages, cuts):
    one = db.begin_nested()
    _run(db, [dict(m) for m in messages], [])
    together = _partition(db)
    one.rollback()

    split = db.begin_nested()
    _run(db, [dict(m) for m in messages], cuts)
    separately = _partition(db)
    live = set(db.scalars(sa.select(Customer.id).where(Customer.merged_into_id.is_(None))))
    owners = set(db.scalars(sa.select(Event.customer_id)))
    identity_owners = set(db.scalars(sa.select(Identity.customer_id)))
    split.rollback()

    assert together == separately
    assert owners <= live and identity_owners <= live  # nothing points at a merged-away profile
    users_per_customer = [g for g in separately if len({v for v in g if v.startswith("u")}) > 1]
    assert users_per_customer == [] or any(m["type"] == "alias" for m in messages)
