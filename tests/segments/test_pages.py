"""The segment pages through a logged-in browser (TestClient), on SQLite and PostgreSQL."""

from __future__ import annotations

from clm.segments import service
from tests.dashboard.conftest import as_role, browser, cheap_hashing, token_of, user_factory  # noqa: F401
from tests.dashboard.seed import seed_shop

HUE = {"name": "Huế", "r.kind": "group", "r.mode": "all", "r.0.kind": "cond", "r.0.type": "profile",
       "r.0.field": "city", "r.0.op": "eq", "r.0.value": "Hà Nội"}


def test_a_bad_value_is_refused_on_save_naming_its_path_in_the_tree(db, as_role):  # noqa: F811
    client = as_role("marketer")
    form = {**HUE, "r.1.kind": "cond", "r.1.type": "orders", "r.1.field": "count", "r.1.op": "gte",
            "r.1.value": "many", "csrf_token": token_of(client)}
    r = client.post("/segments/new", data=form)
    assert r.status_code == 422
    assert "rules.all[1].value" in r.text and 'class="cond invalid"' in r.text
    assert service.list_segments(db) == []


def test_a_static_list_is_not_edited_in_the_builder_and_an_unknown_segment_is_404(db, as_role):  # noqa: F811
    static = service.save_segment(db, name="VIP tay", kind="static")
    db.commit()
    client = as_role("marketer")
    for r in (client.get(f"/segments/{static.id}/edit", follow_redirects=False),
              client.post(f"/segments/{static.id}/edit", data={**HUE, "csrf_token": token_of(client)},
                          follow_redirects=False)):
        assert r.status_code == 303 and r.headers["location"] == f"/segments/{static.id}"
    db.expire_all()
    kept = service.get_segment(db, static.id)
    assert (kept.name, kept.kind, kept.rules) == ("VIP tay", "static", None)
    assert client.get("/segments/999999/edit").status_code == 404
    assert client.post("/segments/999999/edit", data={**HUE, "csrf_token": token_of(client)}).status_code == 404
    assert [s.name for s in service.list_segments(db)] == ["VIP tay"]


def test_the_builder_counts_as_the_form_changes_and_adds_and_removes_conditions(db, as_role):  # noqa: F811
    from clm.lib.clock import utcnow

    seed_shop(db, utcnow())
    client = as_role("manager")
    token = token_of(client)
    r = client.post("/segments/builder/count", data={**HUE, "csrf_token": token})
    assert '<strong id="count">2</strong>' in r.text
    r = client.post("/segments/builder", data={**HUE, "action": "add:r", "csrf_token": token})
    assert 'name="r.1.type"' in r.text
    r = client.post("/segments/builder", data={**HUE, "r.mode": "not", "action": "remove:r.0", "csrf_token": token})
    assert 'name="r.0.type"' not in r.text and 'id="rules-error"' in r.text  # an empty group is refused


def test_a_saved_segment_opens_for_sales_in_vietnamese_and_a_static_list_says_it_is_one(db, as_role, user_factory):  # noqa: F811
    from clm.lib.clock import utcnow

    seed_shop(db, utcnow())
    dynamic = service.save_segment(db, name="Hà Nội", rules={"type": "profile", "field": "city", "op": "eq",
                                                             "value": "Hà Nội"})
    static = service.save_segment(db, name="VIP tay", kind="static")
    db.commit()
    client = as_role("sales")
    client.post("/locale", data={"locale": "vi", "csrf_token": token_of(client)})
    page = client.get(f"/segments/{dynamic.id}")
    assert page.status_code == 200
    assert "thành phố là “Hà Nội”" in page.text and "Nguyễn Văn An" in page.text and "Cơ cấu giai đoạn" in page.text
    assert f'href="/segments/{dynamic.id}/edit"' not in page.text  # sales may look, not edit
    listing = client.get("/segments")
    assert "Danh sách cố định" in listing.text and "VIP tay" in listing.text
    assert "Danh sách cố định: thêm thành viên" in client.get(f"/segments/{static.id}").text
    assert client.get(f"/segments/{dynamic.id}/edit").status_code == 403


def test_the_members_table_pages_past_the_first_fifty_and_links_to_each_customer(db, as_role):  # noqa: F811
    import re

    from clm.customers.models import Customer

    people = [Customer(full_name=f"Khách {i:03d}", city="Huế") for i in range(57)]
    db.add_all(people)
    db.flush()
    segment = service.save_segment(db, name="Huế", rules={"type": "profile", "field": "city", "op": "eq",
                                                           "value": "Huế"})
    db.commit()
    client = as_role("sales")
    page = client.get(f"/segments/{segment.id}")
    ids = sorted(p.id for p in people)
    assert page.text.count('href="/customers/') == 50 and f'href="/customers/{ids[49]}"' in page.text
    nxt = re.search(r'hx-get="(/segments/\d+/members\?after=(\d+))"', page.text)
    assert nxt and int(nxt[2]) == ids[49]
    more = client.get(nxt[1])
    assert more.status_code == 200 and more.text.count('href="/customers/') == 7
    assert f'href="/customers/{ids[50]}"' in more.text and "members-more" not in more.text  # the last page
    plain = client.get(f"/segments/{segment.id}?after={ids[49]}")  # the link without HTMX
    assert plain.text.count('href="/customers/') == 7 and "Back to the first page" in plain.text
