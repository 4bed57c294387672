import sqlalchemy as sa

from clm.commerce.models import Order
from clm.customers.models import Identity
from clm.imports.events import row_message_id
from clm.tracking.models import Event, EventDaily

HEADER = ["user_id", "email", "event", "timestamp", "properties", "plan"]


def test_events_import_through_the_tracking_pipeline_with_extra_columns_as_properties(
        write_csv, run_import, db, count):
    path = write_csv([HEADER,
                      ["u1", "", "Signed Up", "2024-05-01T10:00:00+07:00", '{"ref": "tết"}', "gold"],
                      ["", "Mai@X.vn", "Newsletter Joined", "2024-05-02 09:00", "", ""]])
    outcome = run_import("events", path)
    assert outcome.summary.imported == 2
    signed = db.scalar(sa.select(Event).where(Event.name == "Signed Up"))
    assert (signed.properties, signed.source) == ({"ref": "tết", "plan": "gold"}, "import")
    assert signed.timestamp.isoformat() == "2024-05-01T03:00:00+00:00"
    joined = db.scalar(sa.select(Event).where(Event.name == "Newsletter Joined"))
    assert db.scalar(sa.select(Identity.customer_id).where(Identity.value == "mai@x.vn")) == joined.customer_id
    assert count(EventDaily) == 2


def test_events_without_a_message_id_get_the_same_id_on_every_import(write_csv, run_import, snapshot):
    path = write_csv([HEADER, ["u1", "", "Viewed", "2024-05-01", "", "a"], ["u1", "", "Viewed", "2024-05-01", "", "b"]])
    run_import("events", path)
    before = snapshot()
    again = run_import("events", path)
    assert (again.summary.imported, again.summary.unchanged) == (0, 2)
    assert snapshot() == before


def test_the_derived_message_id_ignores_spacing_and_empty_cells():
    assert row_message_id({"a": " x ", "b": ""}) == row_message_id({"a": "x"})
    assert row_message_id({"a": "x"}) != row_message_id({"a": "y"})


def test_a_message_id_column_keys_the_events_and_order_completed_records_the_order(
        write_jsonl, run_import, db, report):
    path = write_jsonl([
        {"messageId": "m-1", "anonymous_id": "a1", "event": "Order Completed", "timestamp": 1714550400,
         "properties": {"order_id": "W-9", "total": 99000}},
        {"messageId": "m-2", "user_id": "u2", "event": "Order Completed", "timestamp": "2024-05-01",
         "properties": {}},
        {"messageId": "m-3", "event": "Orphan", "timestamp": "2024-05-01"},
        {"messageId": "m-4", "user_id": "u2", "event": "Late", "timestamp": "someday"},
    ])
    outcome = run_import("events", path)
    assert (outcome.summary.imported, outcome.summary.rejected) == (1, 3)
    assert db.scalar(sa.select(Event.message_id)) == "m-1"
    assert db.scalar(sa.select(Order.total).where(Order.external_id == "W-9")) == 99000
    rows = report(outcome)
    assert [(r["line"], r["column"]) for r in rows] == [("2", "properties"), ("3", ""), ("4", "timestamp")]
    assert rows[0]["reason"].startswith("properties.order_id: is required")
