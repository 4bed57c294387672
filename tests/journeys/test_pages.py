"""The journey pages through a logged-in browser (TestClient), on SQLite and PostgreSQL: the list, the builder
(add, change, move and remove steps, a condition with the segment rule editor, validation naming the node),
saving (a new version once live), the state buttons, a journey's page with its counts, the customer 360."""

from __future__ import annotations

import re

import sqlalchemy as sa

from clm.journeys import service
from clm.journeys.models import Journey, JourneyVersion
from tests.dashboard.conftest import as_role, browser, cheap_hashing, token_of, user_factory  # noqa: F401
from tests.journeys.conftest import END, graph, wait

SIMPLE = graph(wait("w", "end", days=2), END, trigger={"type": "event", "event": "Signed Up"})

# The builder's form for: on "Signed Up", wait 2 days, send email template "welcome", exit.
FORM = {"name": "Chào mừng", "description": "", "start": "wait1", "t.type": "event", "t.event": "Signed Up",
        "t.where": "", "e.reentry": "never", "e.reentry_days": "", "g.event": "Order Completed", "g.within_days": "7",
        "g.where": "",
        "n.0.id": "wait1", "n.0.type": "wait", "n.0.previous_type": "wait", "n.0.label": "", "n.0.days": "2",
        "n.0.hours": "", "n.0.minutes": "", "n.0.next": "send1",
        "n.1.id": "send1", "n.1.type": "send_message", "n.1.previous_type": "send_message", "n.1.label": "Lời chào",
        "n.1.channel": "email", "n.1.template": "welcome", "n.1.purpose": "marketing", "n.1.next": "end",
        "n.2.id": "end", "n.2.type": "exit", "n.2.previous_type": "exit", "n.2.label": ""}


def post(client, path: str, data: dict):
    return client.post(path, data={**data, "csrf_token": token_of(client)})


def ids_in(html: str) -> list[str]:
    return re.findall(r'data-node="([^"]+)"', html)


def test_the_list_shows_each_journeys_state_version_and_counts_and_escapes_names(db, as_role):  # noqa: F811
    service.save_journey(db, name="<script>alert(1)</script>", definition=SIMPLE)
    db.commit()
    r = as_role("marketer").get("/journeys")
    assert r.status_code == 200
    assert "<script>alert(1)</script>" not in r.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    row = re.search(r'<tr data-journey="\d+">(.*?)</tr>', r.text, re.S)[1]
    assert "Draft" in row and "v1" in row and "An event" in row


def test_adding_steps_on_edges_builds_a_vertical_flow_and_the_form_keeps_the_graph(db, as_role):  # noqa: F811
    client = as_role("marketer")
    page = client.get("/journeys/new")
    assert page.status_code == 200 and 'name="add.start"' in page.text and ids_in(page.text) == ["end"]
    base = {"name": "x", "start": "end", "t.type": "event", "t.event": "Signed Up", "e.reentry": "never",
            "n.0.id": "end", "n.0.type": "exit", "n.0.previous_type": "exit"}
    r = post(client, "/journeys/builder", {**base, "add.start": "wait"})
    assert ids_in(r.text) == ["wait1", "end"] and 'name="n.0.days" value="1"' in r.text
    assert 'name="start" value="wait1"' in r.text and 'name="add.0.next"' in r.text
    # The form as the browser would send it back, plus a message step on the wait's edge.
    form = {**base, "start": "wait1", "n.0.id": "wait1", "n.0.type": "wait", "n.0.previous_type": "wait", "n.0.days": "1",
            "n.0.next": "end", "n.1.id": "end", "n.1.type": "exit", "n.1.previous_type": "exit", "add.0.next": "send_message"}
    r = post(client, "/journeys/builder", form)
    assert ids_in(r.text) == ["wait1", "send1", "end"]
    assert '<select name="n.1.template">' in r.text and "No template for this channel yet" in r.text


def test_a_condition_step_edits_its_rules_with_the_segment_rule_editor_and_branches_to_yes_and_no(db, as_role):  # noqa: F811
    client = as_role("marketer")
    base = {"name": "x", "start": "end", "t.type": "api", "e.reentry": "never",
            "n.0.id": "end", "n.0.type": "exit", "n.0.previous_type": "exit", "add.start": "condition"}
    r = post(client, "/journeys/builder", base)
    assert ids_in(r.text) == ["if1", "end", "end1"]
    assert 'name="n.0.r.0.type"' in r.text and 'hx-post="/journeys/builder"' in r.text
    assert 'value="add:n.0.r"' in r.text  # the editor's "+ condition" posts back to the journey builder
    assert "/segments/builder/count" not in r.text
    form = {"name": "Hà Nội first", "start": "if1", "t.type": "api", "e.reentry": "never",
            "n.0.id": "if1", "n.0.type": "condition", "n.0.previous_type": "condition", "n.0.yes": "end", "n.0.no": "end1",
            "n.0.r.kind": "group", "n.0.r.mode": "all", "n.0.r.0.kind": "cond", "n.0.r.0.type": "profile",
            "n.0.r.0.previous_type": "profile", "n.0.r.0.field": "city", "n.0.r.0.op": "eq", "n.0.r.0.value": "Hà Nội",
            "n.1.id": "end", "n.1.type": "exit", "n.1.previous_type": "exit",
            "n.2.id": "end1", "n.2.type": "exit", "n.2.previous_type": "exit"}
    r = post(client, "/journeys/builder", {**form, "action": "add:n.0.r"})
    assert 'name="n.0.r.1.type"' in r.text and 'value="Hà Nội"' in r.text
    saved = post(client, "/journeys/new", form)
    assert saved.status_code == 303
    journey = db.scalar(sa.select(Journey).where(Journey.name == "Hà Nội first"))
    definition = service.current_version(db, journey).definition
    assert definition["nodes"][0]["rules"] == {"type": "profile", "field": "city", "op": "eq", "value": "Hà Nội"}
    assert (definition["nodes"][0]["yes"], definition["nodes"][0]["no"]) == ("end", "end1")


def test_steps_move_up_and_down_a_chain_and_removing_one_joins_its_neighbours(db, as_role):  # noqa: F811
    client = as_role("manager")
    r = post(client, "/journeys/builder", {**FORM, "action": "down:0"})
    assert ids_in(r.text) == ["send1", "wait1", "end"] and 'name="start" value="send1"' in r.text
    r = post(client, "/journeys/builder", {**FORM, "action": "up:1"})
    assert ids_in(r.text) == ["send1", "wait1", "end"]
    r = post(client, "/journeys/builder", {**FORM, "action": "drop:0"})
    assert ids_in(r.text) == ["send1", "end"] and 'name="start" value="send1"' in r.text


def test_a_random_split_gets_branches_and_removing_a_branch_removes_what_only_it_reached(db, as_role):  # noqa: F811
    client = as_role("marketer")
    r = post(client, "/journeys/builder", {**FORM, "add.0.next": "random_split"})
    assert ids_in(r.text) == ["wait1", "ab1", "send1", "end", "end1"]  # A goes on; the control ends at once
    assert 'name="n.1.b.1.control" value="1" checked' in r.text
    split = {k: v for k, v in FORM.items() if not k.startswith("n.")}
    split.update({"start": "ab1", "n.0.id": "ab1", "n.0.type": "random_split", "n.0.previous_type": "random_split",
                  "n.0.b.0.name": "A", "n.0.b.0.weight": "50", "n.0.b.0.next": "send1",
                  "n.0.b.1.name": "control", "n.0.b.1.weight": "50", "n.0.b.1.control": "1", "n.0.b.1.next": "end",
                  **{k.replace("n.1.", "n.1."): v for k, v in FORM.items() if k.startswith("n.1.")},
                  "n.2.id": "end", "n.2.type": "exit", "n.2.previous_type": "exit"})
    r = post(client, "/journeys/builder", {**split, "action": "branch:0"})
    assert 'name="n.0.b.2.name" value="B"' in r.text and "end1" in ids_in(r.text)
    r = post(client, "/journeys/builder", {**split, "n.0.b.2.name": "B", "n.0.b.2.weight": "10", "n.0.b.2.next": "end",
                                           "action": "unbranch:0.0"})
    assert "send1" not in ids_in(r.text) and 'name="n.0.b.2.name"' not in r.text


def test_changing_a_steps_type_keeps_where_it_went_on_to(db, as_role):  # noqa: F811
    client = as_role("marketer")
    r = post(client, "/journeys/builder", {**FORM, "n.0.type": "wait_for_event"})
    assert ids_in(r.text) == ["wait1", "send1", "end", "end1"]
    assert 'name="n.0.event" value="Order Completed"' in r.text
    assert re.search(r'<select name="n.0.next">.*?<option value="send1" selected>', r.text, re.S)
    assert re.search(r'<select name="n.0.timeout_next">.*?<option value="end1" selected>', r.text, re.S)


def test_validate_names_the_node_and_the_problem_and_saving_is_refused_with_them(db, as_role):  # noqa: F811
    client = as_role("marketer")
    bad = {**FORM, "n.1.template": "", "n.0.days": ""}
    r = post(client, "/journeys/builder", {**bad, "action": "validate"})
    assert 'id="problems"' in r.text
    assert "node &#39;wait1&#39; (wait): a wait needs a duration longer than zero" in r.text
    assert "node &#39;send1&#39; (send_message): the action is missing its template" in r.text
    assert re.search(r'class="jnode jnode-send_message invalid" id="node-send1"', r.text)
    assert "definition.nodes[1].template" in r.text
    saved = post(client, "/journeys/new", bad)
    assert saved.status_code == 422 and "missing its template" in saved.text
    assert service.list_journeys(db) == []
    r = post(client, "/journeys/builder", {**FORM, "action": "validate"})
    assert 'id="valid"' in r.text and 'id="problems"' not in r.text


def test_saving_creates_a_draft_and_saving_a_live_journey_makes_a_new_version(db, as_role):  # noqa: F811
    client = as_role("marketer")
    r = post(client, "/journeys/new", FORM)
    assert r.status_code == 303
    journey = db.scalar(sa.select(Journey).where(Journey.name == "Chào mừng"))
    assert r.headers["location"] == f"/journeys/{journey.id}"
    definition = service.current_version(db, journey).definition
    assert definition == {"trigger": {"type": "event", "event": "Signed Up"}, "start": "wait1", "nodes": [
        {"id": "wait1", "type": "wait", "duration": {"days": 2}, "next": "send1"},
        {"id": "send1", "type": "send_message", "label": "Lời chào", "channel": "email", "template": "welcome",
         "next": "end"},
        {"id": "end", "type": "exit"}]}
    assert post(client, f"/journeys/{journey.id}/activate", {}).status_code == 303
    edit = client.get(f"/journeys/{journey.id}/edit")
    assert "saving makes version 2" in edit.text and 'name="n.1.template"' in edit.text
    r = post(client, f"/journeys/{journey.id}/edit", {**FORM, "n.0.days": "3", "journey_id": str(journey.id)})
    assert r.status_code == 303
    numbers = db.scalars(sa.select(JourneyVersion.number).where(JourneyVersion.journey_id == journey.id)).all()
    assert sorted(numbers) == [1, 2]


def test_the_state_buttons_activate_pause_resume_and_archive_and_a_refusal_is_shown(db, as_role):  # noqa: F811
    journey = service.save_journey(db, name="Sinh nhật", definition=SIMPLE)
    db.commit()
    client = as_role("marketer")

    def state() -> str:
        db.expire_all()
        return db.get(Journey, journey.id).state

    page = client.get(f"/journeys/{journey.id}")
    assert f'action="/journeys/{journey.id}/activate"' in page.text and "/pause" not in page.text
    post(client, f"/journeys/{journey.id}/activate", {})
    assert state() == "active"
    assert f'action="/journeys/{journey.id}/pause"' in client.get(f"/journeys/{journey.id}").text
    post(client, f"/journeys/{journey.id}/pause", {})
    assert state() == "paused"
    post(client, f"/journeys/{journey.id}/resume", {})
    assert state() == "active"
    post(client, f"/journeys/{journey.id}/archive", {})
    assert state() == "archived"
    r = post(client, f"/journeys/{journey.id}/activate", {})
    assert r.status_code == 422 and "an archived journey cannot be activated" in r.text
    assert client.get(f"/journeys/{journey.id}/edit").status_code == 303


def test_the_export_is_the_document_import_takes(db, as_role):  # noqa: F811
    journey = service.save_journey(db, name="Giỏ hàng", definition=SIMPLE)
    db.commit()
    r = as_role("manager").get(f"/journeys/{journey.id}/export")
    assert r.status_code == 200 and r.json() == service.export(db, journey.id)


def test_pages_speak_vietnamese_and_sales_and_agents_have_no_access(db, as_role):  # noqa: F811
    journey = service.save_journey(db, name="Chào mừng", definition=SIMPLE)
    db.commit()
    client = as_role("marketer")
    client.post("/locale", data={"locale": "vi", "csrf_token": token_of(client)})
    listing = client.get("/journeys")
    assert "Hành trình" in listing.text and "Bản nháp" in listing.text and "Một sự kiện" in listing.text
    page = client.get(f"/journeys/{journey.id}")
    assert "Kích hoạt" in page.text and "Chờ" in page.text and "Đặt mục tiêu để ghi nhận doanh thu." in page.text
    assert "Thiết kế hành trình" in client.get("/journeys/new").text
    for role in ("sales", "agent"):
        other = as_role(role)
        assert other.get("/journeys").status_code == 403
        assert 'href="/journeys"' not in other.get("/customers").text


def test_a_missing_journey_is_a_not_found_page(db, as_role):  # noqa: F811
    client = as_role("admin")
    assert client.get("/journeys/999999").status_code == 404
    assert client.get("/journeys/999999/edit").status_code == 404
    assert post(client, "/journeys/999999/activate", {}).status_code == 404


def test_the_playbook_installs_one_journey_in_one_click_then_the_rest_as_drafts(db, as_role):  # noqa: F811
    from clm.journeys import playbook

    client = as_role("marketer")
    listing = client.get("/journeys")
    assert listing.text.count('name="key" value="') == len(playbook.plays()) + 1  # each play, and all
    r = post(client, "/journeys/playbook/install", {"key": "welcome"})
    assert r.status_code == 303
    installed = playbook.installed_journeys(db)
    assert set(installed) == {"welcome"} and installed["welcome"].state == "draft"
    listing = client.get("/journeys")
    assert f'href="/journeys/{installed["welcome"].id}">Installed · Draft' in listing.text
    assert 'name="key" value="welcome"' not in listing.text
    post(client, "/journeys/playbook/install", {"key": "all"})
    assert set(playbook.installed_journeys(db)) == {p.key for p in playbook.plays()}
    assert 'name="key" value="all"' not in client.get("/journeys").text
    r = post(client, "/journeys/playbook/install", {"key": "no-such-play"})
    assert r.status_code == 422 and "no playbook journey is called" in r.text


def test_a_value_the_schema_refuses_is_shown_on_its_node_with_its_path(db, as_role):  # noqa: F811
    client = as_role("marketer")
    form = {**FORM, "n.0.type": "update_trait", "n.0.previous_type": "update_trait", "n.0.trait": "", "n.0.value": "x",
            "n.0.vtype": "string"}
    r = post(client, "/journeys/builder", {**form, "action": "validate"})
    assert re.search(r'class="jnode jnode-update_trait invalid" id="node-wait1"', r.text)
    assert "definition.nodes[0].trait: String should have at least 1 character" in r.text


def test_installing_a_play_without_a_loyalty_program_says_it_gives_the_shared_code(db, as_role):  # noqa: F811
    r = post(as_role("marketer"), "/journeys/playbook/install", {"key": "birthday"})
    assert r.status_code == 200
    assert "No loyalty program yet: the messages give the shared code SINHNHAT" in r.text
