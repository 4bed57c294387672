"""The sales team in the demo shop: four reps, assignment rules, a lead form, and leads with history on a
share of the generated customers, so that every sales page has numbers.

Leads are laid on the shop's real customers, so their visits and orders are the lead's history: a customer
who went on to buy came in as a lead a few days before the first order and is a won deal whose order is
that first order (no extra order is made); others were lost, disqualified, or are still being worked on,
with open deals spread over the pipeline's stages and close dates in the coming months. Calls and notes,
open tasks with reminders, and late first contacts on recent leads are there too; then the lead score is
trained on the closed deals and every open lead is scored. Rows are written in bulk (a second or two).
"""

from __future__ import annotations

import random
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from clm.db.engine import for_writing
from clm.lib.clock import utcnow

TEAM = [("Nguyễn Thu Hà", "ha"), ("Trần Minh Quân", "quan"), ("Lê Hoàng Yến", "yen"), ("Phạm Đức Thắng", "thang")]
SOURCES = [("web_form", 35), ("facebook_lead_ads", 25), ("zalo", 15), ("referral", 10), ("event", 5), ("import", 10)]
CAMPAIGNS = ["tet-2025", "sofa-thang-3", "khai-truong-hcm", "flash-sale-11-11", None, None]
LOST = ["Giá cao hơn đối thủ", "Chưa có nhu cầu", "Không liên lạc được", "Chọn nhà cung cấp khác"]
UNQUALIFIED = ["Số điện thoại sai", "Ngoài khu vực giao hàng", "Chỉ hỏi thông tin"]
SHARE = 0.15  # of customers who get a lead
MAX_LEADS = 4_000


def _pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    return rng.choices([k for k, _ in weighted], [w for _, w in weighted])[0]


def install_for_demo(session_factory: sessionmaker[Session], seed: int = 42, now: datetime | None = None) -> str:
    """Install the sales demo; a line saying what it made."""
    from clm.access.users import create_user
    from clm.commerce.models import Order
    from clm.customers.models import Customer
    from clm.sales.assignment import RuleIn, save_rule
    from clm.sales.codes import next_codes
    from clm.sales.lead_forms import FormIn, save_form
    from clm.sales.models import Activity, Lead, Opportunity, OpportunityStageChange, Task
    from clm.sales.pipelines import default_pipeline, stages_of
    from clm.sales.scoring.service import score_open_leads, train

    now = now or utcnow()
    rng = random.Random(seed * 7919 + 11)
    with session_factory() as session:
        for_writing(session)
        team = [create_user(session, email=f"{key}@demo.clm.example.com", name=name, role="sales",
                            password=secrets.token_urlsafe(12), locale="vi") for name, key in TEAM]
        create_user(session, email="quanly@demo.clm.example.com", name="Đỗ Thanh Tùng", role="manager",
                              password=secrets.token_urlsafe(12), locale="vi")
        ids = [u.id for u in team]
        save_rule(session, RuleIn(name="Miền Bắc", provinces=["Hà Nội", "Hải Phòng"], user_ids=ids[:2], position=1))
        save_rule(session, RuleIn(name="Cả đội", method="least_load", user_ids=ids, position=2))
        save_form(session, FormIn(key="tu-van-sofa", title="Nhận tư vấn và báo giá", campaign="sofa-thang-3",
                                  fields=["name", "phone", "email", "city", "message"],
                                  thank_you="Cảm ơn anh/chị! Nhân viên tư vấn sẽ gọi lại trong 15 phút."))
        pipeline = default_pipeline(session)
        stages = {s.key: s for s in stages_of(session, pipeline.id)}
        open_keys = [s.key for s in stages.values() if s.kind == "open"]

        total = session.scalar(sa.select(sa.func.count()).select_from(Customer)) or 0
        wanted = min(MAX_LEADS, int(total * SHARE))
        first_orders: dict[int, tuple[int, datetime, int]] = {}
        for cid, oid, at, amount in session.execute(sa.select(Order.customer_id, Order.id, Order.placed_at, Order.total)
                                                    .order_by(Order.placed_at.desc(), Order.id.desc())):
            first_orders[cid] = (oid, at, amount)  # the oldest comes last and stays
        rows = session.execute(sa.select(Customer.id, Customer.first_seen_at, Customer.created_at, Customer.city)
                               .where(Customer.merged_into_id.is_(None)).order_by(Customer.id)).all()
        chosen = rng.sample(rows, min(wanted, len(rows)))
        chosen.sort(key=lambda r: r.id)
        lead_codes = next_codes(session, "lead", len(chosen)) if chosen else []
        plans = []
        for row, code in zip(chosen, lead_codes, strict=True):
            seen = row.first_seen_at or row.created_at
            first = first_orders.get(row.id)
            source = _pick(rng, SOURCES)
            owner = rng.choice(ids)
            if first is not None and rng.random() < 0.3:
                created = max(seen, first[1] - timedelta(days=rng.uniform(1, 12)))
                plan = "won"
            else:
                age = rng.random()
                created = now - timedelta(days=rng.uniform(0.01, 45) if age < 0.35 else rng.uniform(45, 400))
                if age < 0.35:
                    plan = rng.choice(["new", "new", "contacted", "qualified", "open_deal", "open_deal", "open_deal"])
                else:
                    plan = rng.choice(["lost", "lost", "lost", "unqualified", "unqualified"])
            lead = Lead(code=code, customer_id=row.id, source=source, external_id=None,
                        campaign=rng.choice(CAMPAIGNS), utm={}, status="new", owner_id=owner,
                        priority=rng.choice(["low", "low", "high", "very_high", "urgent"]),
                        classification_manual=False, score_detail={}, details={"demo": True},
                        assignment={"method": "demo", "user_id": owner, "vi": "Dữ liệu mẫu", "en": "Demo data"},
                        created_at=created, status_changed_at=created, updated_at=created)
            plans.append((lead, plan, first))
        session.add_all([lead for lead, _, _ in plans])
        session.flush()

        deals, activities, tasks, changes = [], [], [], []
        deal_plans = [(lead, plan, first) for lead, plan, first in plans if plan in ("won", "lost", "open_deal")]
        deal_codes = next_codes(session, "opportunity", len(deal_plans)) if deal_plans else []
        for lead, plan, first in plans:
            ordered_at = first[1] if first and plan == "won" else now
            contacted = lead.created_at + timedelta(minutes=rng.uniform(3, 240))
            if plan == "new":
                due = lead.created_at + timedelta(minutes=15)
                lead.first_contact_due_at = due
                lead.first_contact_breached_at = due if due < now else None
                continue
            lead.contacted_at = min(contacted, ordered_at)
            activities.append(Activity(customer_id=lead.customer_id, lead_id=lead.id, kind="call",
                                       subject="Gọi tư vấn lần đầu", user_id=lead.owner_id,
                                       occurred_at=lead.contacted_at, created_at=lead.contacted_at))
            if plan == "unqualified":
                lead.status, lead.unqualified_reason = "unqualified", rng.choice(UNQUALIFIED)
            elif plan in ("contacted", "qualified"):
                lead.status = plan
                due = now + timedelta(days=rng.uniform(0.5, 5))
                tasks.append(Task(subject="Gọi lại gửi báo giá", due_at=due, remind_at=due - timedelta(hours=1),
                                  assignee_id=lead.owner_id, created_by_id=lead.owner_id, customer_id=lead.customer_id,
                                  lead_id=lead.id, priority=lead.priority, created_at=lead.contacted_at,
                                  updated_at=lead.contacted_at))
            else:
                converted = lead.contacted_at + timedelta(hours=rng.uniform(1, 72))
                lead.status, lead.converted_at = "converted", min(converted, ordered_at)
            lead.status_changed_at = lead.converted_at or lead.contacted_at
        for (lead, plan, first), code in zip(deal_plans, deal_codes, strict=True):
            opened = lead.converted_at
            value = int(first[2]) if plan == "won" and first[2] else rng.randrange(2_000_000, 60_000_000, 500_000)
            path = open_keys[:rng.randint(1, len(open_keys))]
            if plan == "won":
                closed_at, status, final = max(first[1], opened), "won", "won"
            elif plan == "lost":
                closed_at, status, final = opened + timedelta(days=rng.uniform(3, 40)), "lost", "lost"
            else:
                closed_at, status, final = None, "open", path[-1]
            deal = Opportunity(code=code, customer_id=lead.customer_id, lead_id=lead.id, pipeline_id=pipeline.id,
                               stage_id=stages[final].id, title=f"Báo giá nội thất {code[-4:]}", value=value,
                               currency="VND", products=[], priority=lead.priority, owner_id=lead.owner_id,
                               status=status, closed_at=closed_at, order_id=first[0] if plan == "won" else None,
                               close_reason=rng.choice(LOST) if plan == "lost" else None,
                               expected_close_date=(now + timedelta(days=rng.uniform(-5, 90))).date()
                               if status == "open" else closed_at.date(),
                               created_at=opened, updated_at=closed_at or opened, stage_changed_at=opened)
            deals.append((deal, path + ([final] if status != "open" else []), opened, closed_at or now))
        session.add_all([d for d, _, _, _ in deals])
        session.flush()
        for deal, path, start, end in deals:
            previous = None
            for i, key in enumerate(path):
                at = start + (end - start) * (i / max(1, len(path) - 1)) if len(path) > 1 else start
                changes.append(OpportunityStageChange(opportunity_id=deal.id, customer_id=deal.customer_id,
                                                      from_stage_id=previous, to_stage_id=stages[key].id,
                                                      user_id=deal.owner_id, changed_at=at))
                previous = stages[key].id
            deal.stage_changed_at = changes[-1].changed_at
            if deal.status == "open":
                activities.append(Activity(customer_id=deal.customer_id, opportunity_id=deal.id, kind="meeting",
                                           subject="Khảo sát và đo đạc tại nhà", user_id=deal.owner_id,
                                           occurred_at=min(now, start + timedelta(days=1)), created_at=start))
        session.add_all(activities + tasks + changes)
        session.flush()
        model = train(session, now)
        scored = score_open_leads(session, now)
        session.commit()
        won = sum(1 for d, _, _, _ in deals if d.status == "won")
        return (f"{len(plans):,} leads, {len(deals):,} deals ({won:,} won) for a team of {len(team)}; "
                f"lead score {model.kind}" + (f" (holdout AUC {model.auc:.2f})" if model.auc is not None else "")
                + f", {scored:,} open leads scored")
