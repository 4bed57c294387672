"""The loyalty program: a points ledger of expiring lots, earning rules, tiers, rewards, referrals."""
