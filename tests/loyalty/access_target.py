"""One of everything in the loyalty program, for tests/web/test_api_access.py (every endpoint has
something to answer about, and a body that succeeds)."""

from __future__ import annotations

from clm.lib.clock import utcnow
from clm.loyalty import ledger, referrals, rewards, rules, tiers
from clm.loyalty.program import ProgramSettings, save_program

ENDPOINTS = [
    ("GET", "/api/v1/loyalty/program", "loyalty:read"),
    ("PUT", "/api/v1/loyalty/program", "loyalty:manage"),
    ("GET", "/api/v1/loyalty/tiers", "loyalty:read"),
    ("PUT", "/api/v1/loyalty/tiers", "loyalty:manage"),
    ("GET", "/api/v1/loyalty/rules", "loyalty:read"),
    ("POST", "/api/v1/loyalty/rules", "loyalty:manage"),
    ("GET", "/api/v1/loyalty/rules/{id}", "loyalty:read"),
    ("PUT", "/api/v1/loyalty/rules/{id}", "loyalty:manage"),
    ("GET", "/api/v1/loyalty/members/{id}", "loyalty:read"),
    ("GET", "/api/v1/loyalty/members/{id}/history", "loyalty:read"),
    ("POST", "/api/v1/loyalty/members/{id}/adjustments", "loyalty:manage"),
    ("GET", "/api/v1/loyalty/members/{id}/referrals", "loyalty:read"),
    ("GET", "/api/v1/loyalty/rewards", "loyalty:read"),
    ("POST", "/api/v1/loyalty/rewards", "loyalty:manage"),
    ("PUT", "/api/v1/loyalty/rewards/{id}", "loyalty:manage"),
    ("POST", "/api/v1/loyalty/quote", "loyalty:write"),
    ("POST", "/api/v1/loyalty/redemptions", "loyalty:write"),
    ("GET", "/api/v1/loyalty/redemptions/{id}", "loyalty:read"),
    ("POST", "/api/v1/loyalty/redemptions/{id}/cancel", "loyalty:write"),
    ("POST", "/api/v1/loyalty/vouchers/validate", "loyalty:write"),
    ("POST", "/api/v1/loyalty/vouchers/consume", "loyalty:write"),
    ("POST", "/api/v1/loyalty/referrals", "loyalty:write"),
]
_RULE = {"name": "1 điểm / 10.000 ₫", "kind": "spend", "config": {}}
_REWARD = {"name": "Voucher 50.000 ₫", "kind": "voucher", "points": 50, "value": 50_000}
BODIES = {
    ("PUT", "/api/v1/loyalty/program"): {"pending_days": 7},
    ("PUT", "/api/v1/loyalty/tiers"): {"tiers": [{"key": "member", "name": "Thành viên", "threshold": 0}]},
    ("POST", "/api/v1/loyalty/rules"): {**_RULE, "name": "another"},
    ("PUT", "/api/v1/loyalty/rules/{id}"): _RULE,
    ("POST", "/api/v1/loyalty/members/{id}/adjustments"): {"points": 10, "reason": "test", "idempotency_key": "t"},
    ("POST", "/api/v1/loyalty/rewards"): _REWARD,
    ("PUT", "/api/v1/loyalty/rewards/{id}"): _REWARD,
    ("POST", "/api/v1/loyalty/quote"): lambda t: {"customer_id": t["/members/"], "cart_total": 100_000},
    ("POST", "/api/v1/loyalty/redemptions"): lambda t: {"customer_id": t["/members/"], "reward_id": t["/rewards/"],
                                                        "idempotency_key": "access-test"},
    ("POST", "/api/v1/loyalty/vouchers/validate"): lambda t: {"code": t["code"], "order_total": 100_000},
    ("POST", "/api/v1/loyalty/vouchers/consume"): lambda t: {"code": t["code"], "order_total": 100_000,
                                                             "order_id": "SO-access"},
    ("POST", "/api/v1/loyalty/referrals"): lambda t: {"code": t["referral_code"], "customer_id": t["newcomer"]},
}


def loyalty_target(shop, customer) -> dict:
    """A program with tiers, a rule, a reward, a member with points and a redemption, a newcomer."""
    db, now = shop.db, utcnow()
    program = save_program(db, ProgramSettings())
    tiers.save_tiers(db, [tiers.TierIn(**t) for t in tiers.DEFAULT_TIERS])
    rule = rules.create_rule(db, rules.RuleIn(**_RULE))
    reward = rewards.save_reward(db, rewards.RewardIn(**_REWARD))
    member = ledger.lock_member(db, customer.id, now)
    ledger.credit(db, member, program, key="access:seed", points=500, reason="seed", source="staff", source_id=None,
                  at=now, now=now)
    redemption, _ = rewards.redeem(db, program, customer.id, idempotency_key="access-seed", now=now,
                                   reward_id=reward.id)
    code = referrals.referral_code(db, customer.id, now)
    newcomer = shop.customer("Lê Văn Mới", email="moi@example.vn")
    db.commit()
    return {"/members/": customer.id, "/rules/": rule.id, "/rewards/": reward.id, "/redemptions/": redemption.id,
            "code": redemption.code, "referral_code": code, "newcomer": newcomer.id}
