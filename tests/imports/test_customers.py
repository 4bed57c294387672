import pytest
import sqlalchemy as sa

from clm.customers.models import Customer, Identity
from clm.imports.readers import ImportFileError
from clm.outbox.models import OutboxEvent

HEADER = ["external_id", "email", "phone", "full_name", "birthday", "city", "plan"]


def customer(db, external_id):
    return db.scalar(sa.select(Customer).where(Customer.external_id == external_id))


def test_broken_rows_are_reported_with_line_numbers_and_reasons_while_the_good_rows_land(
        write_csv, run_import, db, report):
    path = write_csv([
        HEADER,
        ["C1", "an@example.com", "0912 345 678", "Nguyễn Văn An", "1990-03-15", "Hà Nội", "gold"],
        ["C2", "not-an-email", "0912345679", "Lê Thị Hoa", "", "", ""],
        ["C3", "", "123", "Trần Bình", "", "", ""],
        ["C4", "", "", "Phạm Dũng", "31/02/1990", "", ""],
        ["", "", "", "Không Ai", "", "", ""],
        ["C6", "sau@example.com", "", "Võ Sáu", "", "", ""],
    ])
    outcome = run_import("customers", path)
    assert (outcome.summary.read, outcome.summary.imported, outcome.summary.rejected) == (6, 2, 4)
    rows = report(outcome)
    assert [(r["line"], r["column"]) for r in rows] == [("3", "email"), ("4", "phone"), ("5", "birthday"),
                                                        ("6", "")]
    assert "not a valid email" in rows[0]["reason"] and "nothing says who" in rows[3]["reason"]
    assert rows[0]["external_id"] == "C2"  # the original values follow, to fix and import again
    assert customer(db, "C1").traits == {"plan": "gold"} and customer(db, "C6") is not None
    assert customer(db, "C2") is None


def test_importing_the_same_file_again_changes_nothing(write_csv, run_import, snapshot):
    path = write_csv([HEADER, ["C1", "an@example.com", "0912345678", "Nguyễn Văn An", "", "Huế", "gold"],
                      ["C2", "", "0987654321", "Lê Hoa", "", "", ""]])
    first = run_import("customers", path)
    before = snapshot()
    again = run_import("customers", path)
    assert (first.summary.imported, again.summary.imported, again.summary.unchanged) == (2, 0, 2)
    assert snapshot() == before
    assert before["outbox"] > 0


def test_a_changed_row_updates_the_profile_it_names(write_csv, run_import, db, count):
    run_import("customers", write_csv([HEADER, ["C1", "an@example.com", "", "An", "", "Huế", ""]]))
    outcome = run_import("customers", write_csv([HEADER, ["C1", "an@example.com", "", "An", "", "Đà Nẵng", ""]]))
    assert outcome.summary.imported == 1
    assert customer(db, "C1").city == "Đà Nẵng"
    assert count(OutboxEvent, OutboxEvent.topic == "customer.updated") == 2


def test_columns_are_mapped_with_map_options(write_csv, run_import, db):
    path = write_csv([["Mã", "E-mail address", "Mobile", "Họ và tên"],
                      ["K1", "Hoa@Example.com", "+84 912 000 111", "Lê Thị Hoa"]])
    run_import("customers", path, map=["external_id=Mã", "email=E-mail address", "phone=Mobile"])
    row = customer(db, "K1")
    assert (row.email, row.phone, row.full_name) == ("hoa@example.com", "+84912000111", "Lê Thị Hoa")


def test_columns_are_mapped_with_a_toml_file_and_only_named_traits_are_kept(write_csv, run_import, db, tmp_path):
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('external_id = "Mã KH"\nemail = "Thư điện tử"\ntraits = ["Hạng"]\n', encoding="utf-8")
    path = write_csv([["Mã KH", "Thư điện tử", "Hạng", "Ghi chú"], ["K2", "b@x.vn", "vàng", "secret"]])
    run_import("customers", path, mapping_file=mapping)
    assert customer(db, "K2").email == "b@x.vn"
    assert customer(db, "K2").traits == {"Hạng": "vàng"}


def test_an_unknown_column_in_the_mapping_is_refused_naming_the_columns_there_are(write_csv, run_import):
    path = write_csv([["email"], ["a@b.vn"]])
    with pytest.raises(ImportFileError, match=r"unknown column 'Mail'.*'email'"):
        run_import("customers", path, map=["email=Mail"])
    with pytest.raises(ImportFileError, match="not a field of customers"):
        run_import("customers", path, map=["mail=email"])


def test_an_excel_csv_with_a_bom_vietnamese_headers_and_semicolons_imports(write_csv, run_import, db):
    path = write_csv([["Mã khách hàng", "Họ tên", "Số điện thoại", "Ngày sinh", "Giới tính", "Tỉnh/Thành"],
                      ["VN1", "Đặng Thị Ngọc Ánh", "0988 123 456", "05/09/1995", "Nữ", "Thừa Thiên Huế"]],
                     bom=True, delimiter=";")
    outcome = run_import("customers", path)
    assert outcome.summary.imported == 1
    row = customer(db, "VN1")
    assert (row.full_name, row.family_name, row.given_name) == ("Đặng Thị Ngọc Ánh", "Đặng", "Ánh")
    assert (row.gender, row.city, str(row.birthday)) == ("female", "Thừa Thiên Huế", "1995-09-05")
    assert row.traits == {}


@pytest.mark.parametrize("written, e164", [
    ("0912 345 678", "+84912345678"),
    ("84912345678", "+84912345678"),
    ("+84 (91) 234-5678", "+84912345678"),
    ("01688123456", "+84388123456"),  # an 11-digit number from before 2018
    ("0283 822 4567", "+842838224567"),  # a Hồ Chí Minh City landline
])
def test_phone_numbers_are_stored_in_e164_by_vietnamese_rules(write_csv, run_import, db, written, e164):
    run_import("customers", write_csv([["phone"], [written]]))
    assert db.scalar(sa.select(Identity.value).where(Identity.kind == "phone")) == e164


def test_jsonl_customers_import_with_nested_custom_traits(write_jsonl, run_import, db, report):
    path = write_jsonl([
        {"external_id": 42, "email": "j@x.vn", "zalo_id": "z-1", "preferences": {"sms": True}},
        b"{broken",
        {"email": "k@x.vn", "birthday": "tomorrow"},
    ])
    outcome = run_import("customers", path)
    assert (outcome.summary.imported, outcome.summary.rejected) == (1, 2)
    assert customer(db, "42").traits == {"preferences": {"sms": True}}
    kinds = set(db.scalars(sa.select(Identity.kind).where(Identity.customer_id == customer(db, "42").id)))
    assert kinds == {"user_id", "email", "zalo"}
    assert [(r["line"], r["column"]) for r in report(outcome)] == [("2", ""), ("3", "birthday")]
    assert report(outcome)[0]["record"] == "{broken"


def test_a_row_matching_a_known_customer_by_phone_enriches_that_profile(write_csv, run_import, db, count):
    run_import("customers", write_csv([["phone", "full_name"], ["0912345678", "An"]]))
    run_import("customers", write_csv([["phone", "email"], ["+84912345678", "an@x.vn"]]))
    assert count(Customer) == 1
    assert db.scalar(sa.select(Customer.email)) == "an@x.vn"
