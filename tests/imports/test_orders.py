import uuid

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clm.commerce.models import Order, OrderItem, Product
from clm.customers.models import Customer
from clm.outbox.models import OutboxEvent

HEADER = ["order_id", "customer_id", "email", "phone", "placed_at", "total", "status", "sku", "product_name",
          "quantity", "price"]


def line(order_id, customer="KH1", sku="CF", quantity="1", price="29000", total="", placed="2024-05-01 10:00",
         status="completed", email="", phone=""):
    return [order_id, customer, email, phone, placed, total, status, sku, "Cà phê sữa đá", quantity, price]


def order(db, external_id):
    return db.scalar(sa.select(Order).where(Order.external_id == external_id))


def items(db, external_id):
    return db.execute(sa.select(OrderItem.sku, OrderItem.quantity, OrderItem.price).join(Order)
                      .where(Order.external_id == external_id).order_by(OrderItem.sku)).all()


def test_rows_sharing_an_order_id_form_one_order_with_its_items(write_csv, run_import, db, count):
    path = write_csv([HEADER, line("SO-1", sku="CF", quantity="2", price="29000", total="103.000 ₫"),
                      line("SO-1", sku="TEA", quantity="1", price="45000", total="103.000 ₫"),
                      line("SO-2", customer="KH2", sku="CF")])
    outcome = run_import("orders", path)
    assert (outcome.summary.imported, outcome.summary.rejected) == (3, 0)
    so1 = order(db, "SO-1")
    assert (so1.total, so1.currency, so1.status) == (103000, "VND", "completed")
    assert items(db, "SO-1") == [("CF", 2, 29000), ("TEA", 1, 45000)]
    assert db.scalar(sa.select(Product.name).where(Product.sku == "CF")) == "Cà phê sữa đá"
    assert count(OutboxEvent, OutboxEvent.topic == "order.completed") == 2


def test_an_order_without_a_total_is_the_sum_of_its_items_and_times_without_zone_are_business_time(
        write_csv, run_import, db):
    run_import("orders", write_csv([HEADER, line("SO-3", quantity="3", price="10000", placed="02/01/2024 08:30")]))
    so3 = order(db, "SO-3")
    assert so3.total == 30000
    assert so3.placed_at.isoformat() == "2024-01-02T01:30:00+00:00"  # 08:30 in Hồ Chí Minh City


def test_a_bad_item_row_rejects_its_whole_order_and_only_it(write_csv, run_import, db, report):
    path = write_csv([HEADER, line("SO-4", sku="CF"), line("SO-4", sku="TEA", quantity="two"),
                      line("SO-5", total="abc"), line("SO-6", status="Đã hủy"), line("SO-7"),
                      line("", sku="X")])
    outcome = run_import("orders", path)
    assert (outcome.summary.imported, outcome.summary.rejected) == (1, 5)
    assert [(r["line"], r["column"]) for r in report(outcome)] == [
        ("2", ""), ("3", "quantity"), ("4", "total"), ("5", "status"), ("7", "order_id")]
    assert "line 3" in report(outcome)[0]["reason"]
    assert order(db, "SO-4") is None and order(db, "SO-7") is not None


def test_orders_attach_to_existing_customers_and_create_unknown_ones_with_their_contacts(
        write_csv, run_import, db, count):
    run_import("customers", write_csv([["external_id", "phone"], ["KH1", "0912345678"]], name="c.csv"))
    path = write_csv([HEADER, line("SO-8", customer="", phone="+84 912 345 678"),
                      line("SO-9", customer="KH9", email="Chin@X.vn", phone="0987 654 321")])
    run_import("orders", path)
    kh1 = db.scalar(sa.select(Customer.id).where(Customer.external_id == "KH1"))
    assert order(db, "SO-8").customer_id == kh1
    kh9 = db.get(Customer, order(db, "SO-9").customer_id)
    assert (kh9.external_id, kh9.email, kh9.phone) == ("KH9", "chin@x.vn", "+84987654321")
    assert count(Customer) == 2


def test_importing_the_same_orders_again_changes_nothing(write_csv, run_import, snapshot):
    path = write_csv([HEADER, line("SO-10", sku="CF"), line("SO-10", sku="TEA"), line("SO-11", customer="KH2"),
                      line("SO-12", status="refunded", total="29000")])
    first = run_import("orders", path)
    before = snapshot()
    again = run_import("orders", path, chunk_size=1)  # chunks never split an order's rows
    assert (first.summary.imported, again.summary.imported, again.summary.unchanged) == (4, 0, 4)
    assert snapshot() == before


def test_refunded_orders_are_recorded_with_their_refund(write_csv, run_import, db, count):
    run_import("orders", write_csv([HEADER, line("SO-13", status="refunded", total="29000")]))
    assert (order(db, "SO-13").status, order(db, "SO-13").refunded) == ("refunded", 29000)
    assert count(OutboxEvent, OutboxEvent.topic == "order.refunded") == 1


def test_jsonl_orders_carry_their_items_as_a_products_list(write_jsonl, run_import, db, report):
    path = write_jsonl([
        {"order_id": "W-1", "email": "w@x.vn", "placed_at": "2024-05-01T10:00:00Z", "currency": "usd",
         "total": 25.5, "products": [{"sku": "MUG", "price": 12.75, "quantity": 2}], "note": "gift"},
        {"order_id": "W-2", "email": "w@x.vn", "placed_at": "2024-05-01T10:00:00Z",
         "products": [{"sku": "MUG", "quantity": -1}]},
    ])
    outcome = run_import("orders", path)
    assert (outcome.summary.imported, outcome.summary.rejected) == (1, 1)
    w1 = order(db, "W-1")
    assert (w1.total, w1.currency, w1.properties) == (2550, "USD", {"note": "gift"})
    assert items(db, "W-1") == [("MUG", 2, 1275)]
    assert report(outcome)[0]["column"] == "products" and "quantity" in report(outcome)[0]["reason"]


ROWS = [line("A", sku="CF", quantity="2"), line("A", sku="TEA"), line("B", customer="KH2", sku="CF"),
        line("C", customer="KH3", sku="X", quantity="oops"), line("D", customer="KH1", total="50000"),
        line("B", customer="KH2", sku="BANH", price="15000")]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(range(len(ROWS))))
def test_any_order_of_the_rows_imports_the_same_orders(write_csv, run_import, db, order):
    prefix = uuid.uuid4().hex[:8]  # each example writes its own orders inside the test's transaction
    rows = [[f"{prefix}-{r[0]}", f"{prefix}-{r[1]}", *r[2:]] for r in (ROWS[i] for i in order)]
    outcome = run_import("orders", write_csv([HEADER, *rows], name=f"{prefix}.csv"))
    stored = db.execute(
        sa.select(Order.external_id, Order.total, OrderItem.sku, OrderItem.quantity)
        .join(OrderItem, OrderItem.order_id == Order.id, isouter=True)
        .where(Order.external_id.like(f"{prefix}-%"))
    ).all()
    assert sorted((o.removeprefix(prefix + "-"), t, s, q) for o, t, s, q in stored) == [
        ("A", 87000, "CF", 2), ("A", 87000, "TEA", 1), ("B", 44000, "BANH", 1), ("B", 44000, "CF", 1),
        ("D", 50000, "CF", 1)]
    assert outcome.summary.rejected == 1
