"""The messaging pages: templates (versions, errors, preview), messages (search, status, paging), the
broadcast composer and report, and the channel settings page (secrets never shown, a test send each)."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from clm.channels import broadcasts
from clm.channels.models import Broadcast, TemplateVersion
from clm.channels.service import enqueue_message
from clm.customers.profile import search_text
from clm.jobs.models import Job
from clm.segments.service import change_list, save_segment
from tests.dashboard.conftest import as_role, browser, cheap_hashing, token_of, user_factory  # noqa: F401 (fixtures)


@pytest.fixture
def marketer(as_role, app, channel_settings):  # noqa: F811
    app.state.settings = channel_settings
    return as_role("marketer")


def post(client, path, data):
    return client.post(path, data={**data, "csrf_token": token_of(client)})


def test_a_template_saved_with_a_syntax_error_says_where_and_keeps_what_was_typed(marketer, db):
    r = post(marketer, "/channels/templates/new", {"key": "tet", "channel": "email", "name": "Tết",
                                                   "vi.subject": "Chúc mừng năm mới", "vi.text": "Xin chào {{ customer.name }"})
    assert r.status_code == 422
    assert "variants.vi.text: line 1" in r.text
    assert re.search(r'name="vi.text" rows="4" aria-invalid=true>Xin chào \{\{ customer.name }</textarea>', r.text)


def test_saving_a_template_makes_a_new_version_each_time(marketer, db):
    r = post(marketer, "/channels/templates/new", {"key": "tet", "channel": "email", "name": "Tết",
                                                   "vi.subject": "Chúc mừng năm mới", "vi.text": "Xin chào"})
    assert r.status_code == 303 and r.headers["location"] == "/channels/templates/tet?saved=1"
    r = post(marketer, "/channels/templates/tet", {"name": "Tết", "vi.subject": "Chúc mừng năm mới!",
                                                   "vi.text": "Xin chào {{ customer.given_name }}",
                                                   "en.subject": "Happy new year", "en.text": "Hello"})
    assert r.status_code == 303 and r.headers["location"] == "/channels/templates/tet?saved=2"
    page = marketer.get("/channels/templates/tet?saved=2").text
    assert "Saved as version 2." in page and "Happy new year" in page
    versions = db.scalars(sa.select(TemplateVersion.version).order_by(TemplateVersion.version)).all()
    assert versions == [1, 2]
    assert "<code>tet</code>" in marketer.get("/channels/templates").text


def test_the_preview_renders_unsaved_content_for_the_chosen_customer_or_says_why_not(marketer, make_customer):
    customer = make_customer("an@example.vn", full_name="Nguyễn Thị Lan", given_name="Lan")
    form = {"key": "x", "channel": "email", "customer_id": str(customer.id), "vi.subject": "Chào {{ customer.given_name }}",
            "vi.text": "Cảm ơn {{ customer.name }}: {{ 1250000|vnd }}"}
    r = post(marketer, "/channels/templates/preview", form)
    assert r.status_code == 200
    assert "Chào Lan" in r.text and "Cảm ơn Nguyễn Thị Lan: 1.250.000\xa0₫" in r.text
    r = post(marketer, "/channels/templates/preview", {**form, "vi.text": "{{ order.total }}"})
    assert "vi.text: &#39;order&#39; is undefined" in r.text


def test_the_composer_previews_the_template_as_the_segments_first_member_would_receive_it(marketer, db,
                                                                                          make_customer, welcome):
    from clm.channels.templates import create_template

    bad = create_template(db, key="broken", channel="email",
                          variants={"vi": {"subject": "Đơn {{ order.id }}", "text": "x"}})
    segment = save_segment(db, name="Hà Nội", kind="static")
    make_customer("dau@example.vn", full_name="Người Đầu", given_name="Đầu")  # not in the segment
    member = make_customer("lan@example.vn", full_name="Trần Thị Lan", given_name="Lan")
    change_list(db, segment.id, add=[member.id])
    db.commit()
    composer = marketer.get("/channels/broadcasts/new").text
    assert 'hx-post="/channels/broadcasts/preview"' in composer and 'hx-include="#composer"' in composer
    r = post(marketer, "/channels/broadcasts/preview", {"template_key": "welcome", "segment_id": str(segment.id)})
    assert r.status_code == 200
    assert "Chào Lan" in r.text and "Xin chào <b>Trần Thị Lan</b>" in r.text.replace("&lt;", "<").replace("&gt;", ">")
    assert "As Trần Thị Lan would receive it (vi)" in r.text
    r = post(marketer, "/channels/broadcasts/preview", {"template_key": bad.key, "segment_id": str(segment.id)})
    assert 'id="preview-error"' in r.text and "&#39;order&#39; is undefined" in r.text
    r = post(marketer, "/channels/broadcasts/preview", {"template_key": "missing", "segment_id": str(segment.id)})
    assert "there is no template &#39;missing&#39;" in r.text
    marketer.cookies.set("clm_lang", "vi")
    r = post(marketer, "/channels/broadcasts/preview", {"template_key": bad.key, "segment_id": str(segment.id)})
    assert "biến &#39;order&#39; chưa được định nghĩa" in r.text


def test_the_template_editor_previews_as_the_content_is_typed(marketer, welcome, db):
    db.commit()
    page = marketer.get("/channels/templates/welcome").text
    assert re.search(r'id="preview" hx-post="/channels/templates/preview" hx-include="#template-form"', page)
    assert 'hx-trigger="load, input changed delay:800ms from:#template-form' in page


def test_messages_are_found_by_customer_and_status_and_paged(marketer, db, channel_settings, make_customer, welcome,
                                                             monkeypatch):
    from clm.channels.pages import messages

    monkeypatch.setattr(messages, "PAGE", 2)
    an, binh = make_customer("an@example.vn", full_name="Trần An"), make_customer("binh@example.vn", consent=(),
                                                                                  full_name="Lê Bình")
    for i in range(3):
        enqueue_message(db, customer_id=an.id, channel="email", template_key="welcome", idempotency_key=f"a{i}",
                        settings=channel_settings)
    enqueue_message(db, customer_id=binh.id, channel="email", template_key="welcome", idempotency_key="b",
                    settings=channel_settings)
    for c in (an, binh):
        c.search_text = search_text(c)  # what the customers service keeps for search
    db.commit()
    page = marketer.get("/channels/messages?q=binh").text
    assert page.count(f"/customers/{binh.id}\"") == 1 and f"/customers/{an.id}\"" not in page
    assert "no consent recorded for email marketing" in page
    page = marketer.get("/channels/messages?status=queued").text
    assert f"/customers/{binh.id}\"" not in page and page.count(f"/customers/{an.id}\"") == 2
    next_link = re.search(r'href="([^"]+)" rel="next"', page).group(1).replace("&amp;", "&")
    page = marketer.get(next_link).text
    assert page.count(f"/customers/{an.id}\"") == 1 and 'rel="next"' not in page
    message_id = re.search(r'href="/channels/messages/(\d+)"', page).group(1)
    assert "History" in marketer.get(f"/channels/messages/{message_id}").text


def test_why_a_message_was_not_sent_reads_in_vietnamese_for_a_vietnamese_reader(marketer, db, channel_settings,
                                                                               make_customer, welcome):
    customer = make_customer("an@example.vn", consent=())
    message = enqueue_message(db, customer_id=customer.id, channel="email", template_key="welcome",
                              idempotency_key="vi-1", settings=channel_settings)
    db.commit()
    marketer.cookies.set("clm_lang", "vi")
    listed, one = marketer.get("/channels/messages").text, marketer.get(f"/channels/messages/{message.id}").text
    profile = marketer.get(f"/customers/{customer.id}").text  # the customer 360's messages
    for page in (listed, one, profile):
        assert "chưa ghi nhận sự đồng ý nhận tin tiếp thị qua email" in page
        assert "no consent recorded" not in page
    marketer.cookies.set("clm_lang", "en")
    assert "no consent recorded for email marketing" in marketer.get(f"/channels/messages/{message.id}").text
    assert "no consent recorded for email marketing" in marketer.get(f"/customers/{customer.id}").text


def test_the_broadcast_list_pages_beyond_its_first_page(marketer, db, monkeypatch):
    from clm.channels.models import Broadcast
    from clm.channels.pages import broadcasts as pages

    monkeypatch.setattr(pages, "PAGE", 2)
    db.add_all([Broadcast(name=f"Đợt {i}", channel="email", template_key="welcome") for i in range(5)])
    db.commit()
    names, url = [], "/channels/broadcasts"
    while url:
        html = marketer.get(url).text
        names += re.findall(r'href="/channels/broadcasts/\d+">(Đợt \d)</a>', html)
        found = re.search(r'href="([^"]+)" rel="next"', html)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert sorted(names) == [f"Đợt {i}" for i in range(5)] and len(names) == 5
    assert "Đợt 4" in marketer.get("/channels/broadcasts").text
    assert marketer.get("/channels/broadcasts?cursor=nonsense").status_code == 200


@pytest.fixture
def segment(db, make_customer, welcome):
    segment = save_segment(db, name="Khách quen", kind="static")
    change_list(db, segment.id, add=[make_customer("an@example.vn").id, make_customer("binh@example.vn").id])
    db.commit()
    return segment


def test_the_composer_saves_a_draft_then_sends_it_now(marketer, db, segment):
    r = post(marketer, "/channels/broadcasts/new", {"name": "Tết", "template_key": "welcome",
                                                    "segment_id": str(segment.id), "when": "now",
                                                    "attribution_days": "5", "action": "draft"})
    assert r.status_code == 303
    broadcast = db.scalar(sa.select(Broadcast))
    assert (broadcast.status, broadcast.attribution_days, broadcast.created_by) == ("draft", 5, "marketer@shop.vn")
    assert "Tết" in marketer.get(r.headers["location"]).text
    r = post(marketer, f"/channels/broadcasts/{broadcast.id}/edit", {
        "name": "Tết 2026", "template_key": "welcome", "segment_id": str(segment.id), "when": "now",
        "attribution_days": "5", "action": "send"})
    assert r.status_code == 303
    db.expire_all()
    broadcast = db.get(Broadcast, broadcast.id)
    assert (broadcast.name, broadcast.status) == ("Tết 2026", "scheduled")
    assert db.get(Job, broadcast.job_id).kind == "broadcasts.send"


def test_the_composer_schedules_at_a_time_in_the_business_time_zone_and_refuses_a_bad_one(marketer, db, segment):
    base = {"name": "Tết", "template_key": "welcome", "segment_id": str(segment.id), "when": "later",
            "action": "send", "attribution_days": "7"}
    r = post(marketer, "/channels/broadcasts/new", {**base, "send_at": "2099-01-28T09:30"})
    assert r.status_code == 303
    broadcast = db.scalar(sa.select(Broadcast))
    assert broadcast.send_at.isoformat() == "2099-01-28T02:30:00+00:00"  # 09:30 in Hồ Chí Minh City
    for send_at, field in (("", "send_at"), ("2001-01-01T09:00", "send_at"), ("tomorrow", "send_at")):
        r = post(marketer, "/channels/broadcasts/new", {**base, "send_at": send_at})
        assert r.status_code == 422 and f"{field}:" in r.text and "aria-invalid=true" in r.text
    r = post(marketer, "/channels/broadcasts/new", {**base, "when": "now", "template_key": "missing"})
    assert r.status_code == 422 and "template_key: there is no template" in r.text


def test_a_test_send_from_the_composer_is_queued_and_its_state_polled(marketer, db, segment):
    r = post(marketer, "/channels/broadcasts/test", {"template_key": "welcome", "segment_id": str(segment.id),
                                                     "to": "lan@shop.vn"})
    assert r.status_code == 200
    job_id = re.search(r'hx-get="/channels/tests/(\d+)"', r.text).group(1)
    assert "Queued" in r.text and "lan@shop.vn" in r.text
    assert 'hx-trigger="every 1s"' in marketer.get(f"/channels/tests/{job_id}").text
    r = post(marketer, "/channels/broadcasts/test", {"template_key": "welcome", "segment_id": str(segment.id),
                                                     "to": "lan"})
    assert "to: " in r.text and "hx-get" not in r.text


def test_the_report_shows_the_figures_and_why_messages_were_not_sent(marketer, db, session_factory, segment,
                                                                     channel_settings, make_customer):
    stranger = make_customer("chi@example.vn", consent=())
    change_list(db, segment.id, add=[stranger.id])
    b = broadcasts.create_broadcast(db, name="Tết", template_key="welcome", segment_id=segment.id,
                                    settings=channel_settings)
    broadcasts.schedule(db, b.id)
    db.commit()
    with session_factory() as session:
        broadcasts.run_send(session, b.id, settings=channel_settings)  # queued, not sent: no worker ran
    page = marketer.get(f"/channels/broadcasts/{b.id}").text
    assert re.search(r'id="fig-recipients">3<', page)
    assert re.search(r'id="fig-sent">0<', page) and "2 still waiting" in page
    assert "no consent recorded for email marketing" in page
    assert 'id="chart-funnel"' in page and "/static/vendor/chartjs/chart.umd.min.js" in page
    r = post(marketer, f"/channels/broadcasts/{b.id}/cancel", {})
    assert r.status_code == 303
    assert "Cancelled" in marketer.get(f"/channels/broadcasts/{b.id}").text


def test_the_channel_settings_page_shows_what_is_configured_and_never_a_secret(as_role, app, channel_settings):  # noqa: F811
    app.state.settings = channel_settings.model_copy(update={
        "smtp_url": type(channel_settings.smtp_url)("smtp://shop:s3cr3t-pass@mail.example.vn:587?starttls=1"),
        "webhook_signing_secret": type(channel_settings.smtp_url)("whsec-do-not-show")})
    page = as_role("manager").get("/channels/providers").text
    assert "smtp://mail.example.vn:587 (STARTTLS)" in page
    assert "s3cr3t-pass" not in page and "whsec-do-not-show" not in page and "shop:" not in page
    assert re.search(r'id="channel-sms".*?Not configured.*?CLM_ESMS_API_KEY', page, re.S)
    assert re.search(r'id="channel-webhook".*?Configured: webhook', page, re.S)


def test_a_channel_test_send_is_queued_to_the_address_given(marketer, db):
    r = post(marketer, "/channels/providers/test", {"channel": "sms", "to": "0912 345 678"})
    assert r.status_code == 200 and "+84912345678" in r.text
    job = db.scalar(sa.select(Job).where(Job.kind == "channels.test"))
    assert (job.args["channel"], job.args["to"], job.args["requested_by"]) == ("sms", "+84912345678",
                                                                               "marketer@shop.vn")
    r = post(marketer, "/channels/providers/test", {"channel": "zalo", "to": "0912 345 678"})
    assert "template_key: a Zalo test needs a ZNS template" in r.text
