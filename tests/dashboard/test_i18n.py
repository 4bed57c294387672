"""Both languages say everything: the same keys, and every key the pages use exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from clm.access.users import LOCALES, ROLES
from clm.analytics import pages as analytics_pages
from clm.analytics.models import REASONS
from clm.analytics.rfm import SEGMENTS
from clm.channels import pages as channel_pages
from clm.channels.models import BROADCAST_STATUSES, CHANNELS, PURPOSES, STATUSES
from clm.channels.pages.common import TABS as CHANNEL_TABS
from clm.customers.models import IDENTITY_KINDS
from clm.jobs.models import STATES as JOB_STATES
from clm.journeys import models as journey_models
from clm.journeys import pages as journey_pages
from clm.journeys.builder import draft as journey_form
from clm.loyalty import pages as loyalty_pages
from clm.loyalty import public as loyalty_public
from clm.sales import models as sales_models
from clm.sales import pages as sales_pages
from clm.segments import builder
from clm.segments import pages as segments_pages
from clm.service import models as service_models
from clm.service import pages as service_pages
from clm.service import workspace as service_workspace
from clm.service.pages import ticket as service_ticket
from clm.web import i18n
from clm.web.messages import MESSAGES
from clm.web.pages.metrics import STAGES

WEB = Path(i18n.__file__).parent
SOURCES = [*WEB.glob("templates/**/*.html"), *WEB.glob("pages/*.py"), Path(analytics_pages.__file__),
           Path(segments_pages.__file__), Path(builder.__file__), *Path(channel_pages.__file__).parent.glob("*.py"),
           Path(journey_pages.__file__), *Path(service_pages.__file__).parent.glob("*.py"),
           *Path(sales_pages.__file__).parent.glob("*.py"), *Path(loyalty_pages.__file__).parent.glob("*.py")]
LITERAL = re.compile(r"""\bt\(\s*["']([a-z_.]+)["']""")  # t("a.b") but not t("role." ~ x): see FAMILIES
FAMILIES = {
    "role.": ROLES, "stage.": STAGES, "identity.": IDENTITY_KINDS, "gender.": ("male", "female", "other"),
    "order.status.": ("completed", "refunded", "partially_refunded"),
    "timeline.": ("page", "screen", "identify", "alias", "group"),
    "settings.field.": ("email", "name", "role", "password", "locale"),
    "analytics.tab.": analytics_pages.TABS, "scores.reason.": REASONS,
    "segment.": tuple(analytics_pages.segment_key(s) for s in SEGMENTS),
    "segment_help.": tuple(analytics_pages.segment_key(s) for s in SEGMENTS),
    "segments.kind.": ("dynamic", "static"), "segments.mode.": builder.MODES, "segments.type.": builder.TYPES,
    "message.status.": STATUSES, "jobs.state.": JOB_STATES, "jobs.done.": ("retried", "cancelled"),
    "channel.": CHANNELS, "channels.tab.": CHANNEL_TABS, "broadcasts.status.": BROADCAST_STATUSES,
    "messages.purpose.": PURPOSES, "providers.to.": CHANNELS, "templates.variant.": LOCALES,
    "broadcasts.figure.": ("sent", "delivered", "opened", "clicked", "unsubscribed", "failed", "orders", "revenue"),
    "segments.jtype.": builder.JSON_TYPES, "segments.window.": builder.WINDOWS, "segments.target.": builder.TARGETS,
    "journeys.node.": journey_form.NODE_TYPES, "journeys.trigger.": journey_form.TRIGGER_TYPES,
    "journeys.state.": journey_models.JOURNEY_STATES, "journeys.run.": journey_models.OPEN + journey_models.FINAL,
    "journeys.action.": journey_pages.TRANSITIONS, "journeys.branch.": ("yes", "no", "event", "timeout"),
    "journeys.channel.": journey_form.SEND_CHANNELS, "journeys.purpose.": ("marketing", "transactional"),
    "journeys.date_field.": journey_form.DATE_FIELDS, "journeys.reentry.": journey_form.REENTRY,
    "journeys.unit.": ("days", "hours", "minutes"), "journeys.unit_name.": ("days", "hours", "minutes"),
    "journeys.vtype.": journey_form.VALUE_TYPES, "journeys.weekday.": tuple(str(d) for d in journey_pages.WEEKDAYS),
    "journeys.ab.test.": ("z", "fisher"),
    "service.view.": service_workspace.VIEWS, "service.availability.": service_models.AVAILABILITY,
    "service.status.": service_models.STATUSES, "service.priority.": service_models.PRIORITIES,
    "service.channel.": service_models.CHANNELS, "service.timer.": service_models.TIMER_STATES,
    "service.metric.": service_models.METRICS, "service.compose.limit.": ("sms", "zalo", "messenger", "chat"),
    "service.actor.": ("user", "routing", "sla", "system", "customer"),
    "service.field.": tuple(f.replace("sla.", "sla_") for f in service_ticket.FIELDS),
    "loyalty.member.to_next_": ("points", "spend"),
    "sales.priority.": sales_models.PRIORITIES, "sales.status.": sales_models.LEAD_STATUSES,
    "sales.source.": sales_models.SOURCES, "sales.class.": sales_models.CLASSIFICATIONS,
    "sales.activity.": sales_models.ACTIVITY_KINDS, "sales.rules.method.": sales_models.ASSIGNMENT_METHODS,
    "sales.scoring.kind.": ("learned", "prior"), "sales.reports.period.": ("3", "6", "12", "all"),
    "sales.reports.step.": ("leads", "contacted", "qualified", "converted", "won", "lost"),
    "loyalty.kind.": loyalty_public.ENTRY_KINDS, "loyalty.rule.kind.": loyalty_pages.RULE_KINDS,
    "loyalty.reward.kind.": loyalty_pages.REWARD_KINDS,
    "loyalty.audit.": ("adjust", "program", "tiers", "rule", "reward"),
    "loyalty.field.": ("name", "point_name", "point_value", "currency", "timezone", "pending_days", "expiry",
                       "expiry_months", "debt_policy", "redeem_share_percent", "tier_basis", "tier_window",
                       "tier_window_months", "tier_review", "tier_grace_days", "tier_downgrade", "referrer_points",
                       "referred_points", "referral_url"),
    "loyalty.choice.": ("never", "months", "quarter_end", "year_end", "debt", "loss", "points", "spend", "rolling",
                        "calendar_year", "yearly", "after_upgrade", "one_step", "supported"),
    "loyalty.reward.": ("points", "value", "percent", "max_discount", "product_sku", "stock", "per_member_limit",
                        "voucher_days"),
}


def test_both_languages_have_exactly_the_same_keys():
    assert set(MESSAGES) == set(LOCALES) == set(i18n.LOCALES)
    assert set(MESSAGES["vi"]) == set(MESSAGES["en"])


def test_both_languages_use_the_same_placeholders():
    for key, english in MESSAGES["en"].items():
        assert set(re.findall(r"\{(\w+)\}", english)) == set(re.findall(r"\{(\w+)\}", MESSAGES["vi"][key])), key


def test_every_key_a_page_uses_exists():
    used = {key for source in SOURCES for key in LITERAL.findall(source.read_text()) if key not in FAMILIES
            and not key.endswith(".")}
    assert used, "no t(...) calls found: has the pattern changed?"
    assert used - set(MESSAGES["en"]) == set()


def test_every_key_built_at_run_time_exists():
    built = {prefix + value for prefix, values in FAMILIES.items() for value in values}
    built |= {f"error.{kind}.{part}" for kind in ("forbidden", "not_found", "csrf") for part in ("title", "body")}
    assert built - set(MESSAGES["en"]) == set()


def test_no_key_is_left_unused():
    text = "\n".join(source.read_text() for source in SOURCES)
    built = tuple(FAMILIES) + ("error.", "stage.")
    unused = [k for k in MESSAGES["en"] if k not in text and not k.startswith(built)]
    assert unused == []


@pytest.mark.parametrize("header,expected", [
    ("vi", "vi"), ("en-US,en;q=0.9", "en"), ("fr-CH, fr;q=0.9, en;q=0.8, vi;q=0.7", "en"),
    ("vi;q=0.5,en;q=0.6", "en"), ("de", None), ("", None), ("en;q=abc,vi", "vi"),
])
def test_the_browsers_language_is_read_by_preference(header, expected):
    assert i18n.from_accept_language(header) == expected


def test_money_and_phones_read_the_way_people_write_them():
    vi, en = i18n.Formatter("vi", "Asia/Ho_Chi_Minh"), i18n.Formatter("en", "Asia/Ho_Chi_Minh")
    assert vi.money(1_250_000, "VND") == "1.250.000\xa0₫"
    assert en.money(1_250_000, "VND") == "₫1,250,000"
    assert en.money(2550, "USD") == "$25.50"
    assert vi.phone("+84912345678") == "0912 345 678"
    assert vi.phone("+14155550123").startswith("+1 415")
