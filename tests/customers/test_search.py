"""Search invariants: a customer is found by any spelling of their name a person might type."""

import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clm.customers.service import create_customer, list_customers

FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Huỳnh", "Hoàng", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý"]
MIDDLE = ["Văn", "Thị", "Hữu", "Đức", "Thành", "Minh", "Ngọc", "Quốc", "Xuân", "Bảo"]
GIVEN = ["An", "Bình", "Châu", "Dũng", "Đạt", "Giang", "Hạnh", "Khoa", "Lộc", "Mỹ", "Nhung", "Phượng",
         "Quyết", "Sơn", "Thủy", "Uyên", "Việt", "Yến", "Ánh", "Ẩn"]

names = st.tuples(st.sampled_from(FAMILY), st.sampled_from(MIDDLE), st.sampled_from(GIVEN)).map(" ".join)


def plain(ch: str) -> str:
    base = unicodedata.normalize("NFD", ch)[0]
    return {"đ": "d", "Đ": "D"}.get(ch, base)


@st.composite
def typed_like_a_person(draw, name: str) -> str:
    """The name with each letter kept, stripped of its marks, or changed in case; some words left out."""
    spell = st.sampled_from([lambda c: c, plain, str.upper, str.lower, lambda c: plain(c).upper()])
    words = [w for w in name.split() if draw(st.booleans())] or [name.split()[-1]]
    return " ".join("".join(draw(spell)(c) for c in word) for word in words)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_search_finds_a_customer_by_any_accent_or_case_variant_of_their_name(db, data):
    name = data.draw(names)
    query = data.draw(typed_like_a_person(name))
    savepoint = db.begin_nested()
    try:
        customer = create_customer(db, {"full_name": name, "email": "x@example.vn"})
        found, _ = list_customers(db, q=query, limit=200)
        assert customer.id in [c.id for c in found], (name, query)
    finally:
        savepoint.rollback()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=names, other=names)
def test_search_never_finds_a_customer_whose_name_lacks_a_word_of_the_query(db, name, other):
    savepoint = db.begin_nested()
    try:
        customer = create_customer(db, {"full_name": name, "user_id": "someone"})
        found, _ = list_customers(db, q=other, limit=200)
        folded = lambda s: {"".join(plain(c) for c in w).lower() for w in s.split()}  # noqa: E731
        matches = all(any(w in n for n in folded(name)) for w in folded(other))
        assert (customer.id in [c.id for c in found]) == matches, (name, other)
    finally:
        savepoint.rollback()
