"""loyalty: program, points ledger (entries, lots, lot uses, members), rules, tiers, rewards, redemptions, referrals

Revision ID: 0011
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import clm.db.base

revision = '0011'
down_revision = '0007'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')
_TIME = clm.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('loyalty_programs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('point_name', sa.String(length=64), nullable=False),
    sa.Column('point_value', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('pending_days', sa.Integer(), nullable=False),
    sa.Column('expiry', sa.String(length=16), nullable=False),
    sa.Column('expiry_months', sa.Integer(), nullable=False),
    sa.Column('debt_policy', sa.String(length=8), nullable=False),
    sa.Column('redeem_share_percent', sa.Integer(), nullable=False),
    sa.Column('tier_basis', sa.String(length=8), nullable=False),
    sa.Column('tier_window', sa.String(length=16), nullable=False),
    sa.Column('tier_window_months', sa.Integer(), nullable=False),
    sa.Column('tier_review', sa.String(length=16), nullable=False),
    sa.Column('tier_grace_days', sa.Integer(), nullable=False),
    sa.Column('tier_downgrade', sa.String(length=16), nullable=False),
    sa.Column('referrer_points', sa.Integer(), nullable=False),
    sa.Column('referred_points', sa.Integer(), nullable=False),
    sa.Column('created_at', _TIME, nullable=False),
    sa.Column('updated_at', _TIME, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_programs'))
    )
    op.create_table('loyalty_rewards',
    sa.Column('id', _ID, nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=True),
    sa.Column('percent', sa.Integer(), nullable=True),
    sa.Column('max_discount', sa.BigInteger(), nullable=True),
    sa.Column('product_sku', sa.String(length=255), nullable=True),
    sa.Column('stock', sa.Integer(), nullable=True),
    sa.Column('per_member_limit', sa.Integer(), nullable=True),
    sa.Column('valid_from', _TIME, nullable=True),
    sa.Column('valid_until', _TIME, nullable=True),
    sa.Column('voucher_days', sa.Integer(), nullable=False),
    sa.Column('tiers', _JSON, nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', _TIME, nullable=False),
    sa.Column('updated_at', _TIME, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_rewards'))
    )
    op.create_table('loyalty_rules',
    sa.Column('id', _ID, nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('starts_at', _TIME, nullable=True),
    sa.Column('ends_at', _TIME, nullable=True),
    sa.Column('config', _JSON, nullable=False),
    sa.Column('created_at', _TIME, nullable=False),
    sa.Column('updated_at', _TIME, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_rules')),
    sa.UniqueConstraint('name', name=op.f('uq_loyalty_rules_name'))
    )
    op.create_table('loyalty_tiers',
    sa.Column('key', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('threshold', sa.BigInteger(), nullable=False),
    sa.Column('earn_percent', sa.Integer(), nullable=False),
    sa.Column('benefits', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_loyalty_tiers')),
    sa.UniqueConstraint('rank', name=op.f('uq_loyalty_tiers_rank'))
    )
    op.create_table('loyalty_entries',
    sa.Column('id', _ID, nullable=False),
    sa.Column('customer_id', _ID, nullable=False),
    sa.Column('key', sa.String(length=160), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=255), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('source_id', sa.String(length=64), nullable=True),
    sa.Column('available', sa.BigInteger(), nullable=False),
    sa.Column('pending', sa.BigInteger(), nullable=False),
    sa.Column('debt', sa.BigInteger(), nullable=False),
    sa.Column('qualifying', sa.BigInteger(), nullable=False),
    sa.Column('lost', sa.BigInteger(), nullable=False),
    sa.Column('spend', sa.BigInteger(), nullable=False),
    sa.Column('details', _JSON, nullable=False),
    sa.Column('created_at', _TIME, nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_loyalty_entries_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_entries')),
    sa.UniqueConstraint('key', name=op.f('uq_loyalty_entries_key'))
    )
    op.create_index('ix_loyalty_entries_customer_time', 'loyalty_entries', ['customer_id', 'created_at'], unique=False)
    op.create_table('loyalty_members',
    sa.Column('customer_id', _ID, nullable=False),
    sa.Column('available', sa.BigInteger(), nullable=False),
    sa.Column('pending', sa.BigInteger(), nullable=False),
    sa.Column('debt', sa.BigInteger(), nullable=False),
    sa.Column('qualifying', sa.BigInteger(), nullable=False),
    sa.Column('earned', sa.BigInteger(), nullable=False),
    sa.Column('redeemed', sa.BigInteger(), nullable=False),
    sa.Column('expired', sa.BigInteger(), nullable=False),
    sa.Column('lost', sa.BigInteger(), nullable=False),
    sa.Column('tier', sa.String(length=32), nullable=True),
    sa.Column('tier_since', _TIME, nullable=True),
    sa.Column('tier_review_at', _TIME, nullable=True),
    sa.Column('referral_code', sa.String(length=32), nullable=True),
    sa.Column('next_due_at', _TIME, nullable=True),
    sa.Column('created_at', _TIME, nullable=False),
    sa.Column('updated_at', _TIME, nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_loyalty_members_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_loyalty_members')),
    sa.UniqueConstraint('referral_code', name=op.f('uq_loyalty_members_referral_code'))
    )
    op.create_index(op.f('ix_loyalty_members_next_due_at'), 'loyalty_members', ['next_due_at'], unique=False)
    op.create_index(op.f('ix_loyalty_members_tier'), 'loyalty_members', ['tier'], unique=False)
    op.create_index(op.f('ix_loyalty_members_tier_review_at'), 'loyalty_members', ['tier_review_at'], unique=False)
    op.create_table('loyalty_tier_changes',
    sa.Column('id', _ID, nullable=False),
    sa.Column('customer_id', _ID, nullable=False),
    sa.Column('from_tier', sa.String(length=32), nullable=True),
    sa.Column('to_tier', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('measure', sa.BigInteger(), nullable=False),
    sa.Column('changed_at', _TIME, nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_loyalty_tier_changes_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_tier_changes'))
    )
    op.create_index('ix_loyalty_tier_changes_customer', 'loyalty_tier_changes', ['customer_id', 'changed_at'], unique=False)
    op.create_table('loyalty_lots',
    sa.Column('id', _ID, nullable=False),
    sa.Column('customer_id', _ID, nullable=False),
    sa.Column('entry_id', _ID, nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('remaining', sa.BigInteger(), nullable=False),
    sa.Column('released', sa.Boolean(), nullable=False),
    sa.Column('available_at', _TIME, nullable=False),
    sa.Column('expires_at', _TIME, nullable=True),
    sa.Column('created_at', _TIME, nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_loyalty_lots_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['entry_id'], ['loyalty_entries.id'], name=op.f('fk_loyalty_lots_entry_id_loyalty_entries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_lots'))
    )
    op.create_index(op.f('ix_loyalty_lots_entry_id'), 'loyalty_lots', ['entry_id'], unique=False)
    op.create_index('ix_loyalty_lots_open', 'loyalty_lots', ['customer_id', 'expires_at', 'id'], unique=False, sqlite_where=sa.text('remaining > 0'), postgresql_where=sa.text('remaining > 0'))
    op.create_table('loyalty_order_points',
    sa.Column('order_id', _ID, nullable=False),
    sa.Column('customer_id', _ID, nullable=False),
    sa.Column('total', sa.BigInteger(), nullable=False),
    sa.Column('earned', sa.BigInteger(), nullable=False),
    sa.Column('qualifying', sa.BigInteger(), nullable=False),
    sa.Column('spend', sa.BigInteger(), nullable=False),
    sa.Column('spent', sa.BigInteger(), nullable=False),
    sa.Column('refunded', sa.BigInteger(), nullable=False),
    sa.Column('reversed', sa.BigInteger(), nullable=False),
    sa.Column('reversed_qualifying', sa.BigInteger(), nullable=False),
    sa.Column('reversed_spend', sa.BigInteger(), nullable=False),
    sa.Column('returned', sa.BigInteger(), nullable=False),
    sa.Column('entry_id', _ID, nullable=False),
    sa.Column('created_at', _TIME, nullable=False),
    sa.Column('updated_at', _TIME, nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_loyalty_order_points_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['entry_id'], ['loyalty_entries.id'], name=op.f('fk_loyalty_order_points_entry_id_loyalty_entries'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_loyalty_order_points_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('order_id', name=op.f('pk_loyalty_order_points'))
    )
    op.create_index(op.f('ix_loyalty_order_points_customer_id'), 'loyalty_order_points', ['customer_id'], unique=False)
    op.create_table('loyalty_redemptions',
    sa.Column('id', _ID, nullable=False),
    sa.Column('customer_id', _ID, nullable=False),
    sa.Column('reward_id', _ID, nullable=True),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('entry_id', _ID, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=True),
    sa.Column('percent', sa.Integer(), nullable=True),
    sa.Column('max_discount', sa.BigInteger(), nullable=True),
    sa.Column('expires_at', _TIME, nullable=False),
    sa.Column('used_at', _TIME, nullable=True),
    sa.Column('order_ref', sa.String(length=255), nullable=True),
    sa.Column('discount', sa.BigInteger(), nullable=True),
    sa.Column('cancelled_at', _TIME, nullable=True),
    sa.Column('created_at', _TIME, nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_loyalty_redemptions_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['entry_id'], ['loyalty_entries.id'], name=op.f('fk_loyalty_redemptions_entry_id_loyalty_entries'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reward_id'], ['loyalty_rewards.id'], name=op.f('fk_loyalty_redemptions_reward_id_loyalty_rewards'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_redemptions')),
    sa.UniqueConstraint('code', name=op.f('uq_loyalty_redemptions_code')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_loyalty_redemptions_idempotency_key'))
    )
    op.create_index(op.f('ix_loyalty_redemptions_customer_id'), 'loyalty_redemptions', ['customer_id'], unique=False)
    op.create_index(op.f('ix_loyalty_redemptions_order_ref'), 'loyalty_redemptions', ['order_ref'], unique=False)
    op.create_index(op.f('ix_loyalty_redemptions_reward_id'), 'loyalty_redemptions', ['reward_id'], unique=False)
    op.create_table('loyalty_referrals',
    sa.Column('id', _ID, nullable=False),
    sa.Column('customer_id', _ID, nullable=False),
    sa.Column('referrer_id', _ID, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=255), nullable=True),
    sa.Column('order_id', _ID, nullable=True),
    sa.Column('qualifies_at', _TIME, nullable=True),
    sa.Column('created_at', _TIME, nullable=False),
    sa.Column('rewarded_at', _TIME, nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_loyalty_referrals_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_loyalty_referrals_order_id_orders'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['referrer_id'], ['customers.id'], name=op.f('fk_loyalty_referrals_referrer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_referrals')),
    sa.UniqueConstraint('customer_id', name=op.f('uq_loyalty_referrals_customer_id'))
    )
    op.create_index(op.f('ix_loyalty_referrals_qualifies_at'), 'loyalty_referrals', ['qualifies_at'], unique=False)
    op.create_index(op.f('ix_loyalty_referrals_referrer_id'), 'loyalty_referrals', ['referrer_id'], unique=False)
    op.create_table('loyalty_rule_awards',
    sa.Column('id', _ID, nullable=False),
    sa.Column('rule_id', _ID, nullable=False),
    sa.Column('customer_id', _ID, nullable=False),
    sa.Column('entry_id', _ID, nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('created_at', _TIME, nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_loyalty_rule_awards_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['entry_id'], ['loyalty_entries.id'], name=op.f('fk_loyalty_rule_awards_entry_id_loyalty_entries'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['rule_id'], ['loyalty_rules.id'], name=op.f('fk_loyalty_rule_awards_rule_id_loyalty_rules'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_rule_awards'))
    )
    op.create_index('ix_loyalty_rule_awards_cap', 'loyalty_rule_awards', ['rule_id', 'customer_id', 'created_at'], unique=False)
    op.create_index(op.f('ix_loyalty_rule_awards_customer_id'), 'loyalty_rule_awards', ['customer_id'], unique=False)
    op.create_index(op.f('ix_loyalty_rule_awards_entry_id'), 'loyalty_rule_awards', ['entry_id'], unique=False)
    op.create_table('loyalty_lot_uses',
    sa.Column('id', _ID, nullable=False),
    sa.Column('customer_id', _ID, nullable=False),
    sa.Column('entry_id', _ID, nullable=False),
    sa.Column('lot_id', _ID, nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('of_use_id', _ID, nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_loyalty_lot_uses_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['entry_id'], ['loyalty_entries.id'], name=op.f('fk_loyalty_lot_uses_entry_id_loyalty_entries'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['lot_id'], ['loyalty_lots.id'], name=op.f('fk_loyalty_lot_uses_lot_id_loyalty_lots'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['of_use_id'], ['loyalty_lot_uses.id'], name=op.f('fk_loyalty_lot_uses_of_use_id_loyalty_lot_uses'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_lot_uses'))
    )
    op.create_index(op.f('ix_loyalty_lot_uses_customer_id'), 'loyalty_lot_uses', ['customer_id'], unique=False)
    op.create_index(op.f('ix_loyalty_lot_uses_entry_id'), 'loyalty_lot_uses', ['entry_id'], unique=False)
    op.create_index(op.f('ix_loyalty_lot_uses_lot_id'), 'loyalty_lot_uses', ['lot_id'], unique=False)
    op.create_index(op.f('ix_loyalty_lot_uses_of_use_id'), 'loyalty_lot_uses', ['of_use_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_loyalty_lot_uses_of_use_id'), table_name='loyalty_lot_uses')
    op.drop_index(op.f('ix_loyalty_lot_uses_lot_id'), table_name='loyalty_lot_uses')
    op.drop_index(op.f('ix_loyalty_lot_uses_entry_id'), table_name='loyalty_lot_uses')
    op.drop_index(op.f('ix_loyalty_lot_uses_customer_id'), table_name='loyalty_lot_uses')
    op.drop_table('loyalty_lot_uses')
    op.drop_index(op.f('ix_loyalty_rule_awards_entry_id'), table_name='loyalty_rule_awards')
    op.drop_index(op.f('ix_loyalty_rule_awards_customer_id'), table_name='loyalty_rule_awards')
    op.drop_index('ix_loyalty_rule_awards_cap', table_name='loyalty_rule_awards')
    op.drop_table('loyalty_rule_awards')
    op.drop_index(op.f('ix_loyalty_referrals_referrer_id'), table_name='loyalty_referrals')
    op.drop_index(op.f('ix_loyalty_referrals_qualifies_at'), table_name='loyalty_referrals')
    op.drop_table('loyalty_referrals')
    op.drop_index(op.f('ix_loyalty_redemptions_reward_id'), table_name='loyalty_redemptions')
    op.drop_index(op.f('ix_loyalty_redemptions_order_ref'), table_name='loyalty_redemptions')
    op.drop_index(op.f('ix_loyalty_redemptions_customer_id'), table_name='loyalty_redemptions')
    op.drop_table('loyalty_redemptions')
    op.drop_index(op.f('ix_loyalty_order_points_customer_id'), table_name='loyalty_order_points')
    op.drop_table('loyalty_order_points')
    op.drop_index('ix_loyalty_lots_open', table_name='loyalty_lots', sqlite_where=sa.text('remaining > 0'), postgresql_where=sa.text('remaining > 0'))
    op.drop_index(op.f('ix_loyalty_lots_entry_id'), table_name='loyalty_lots')
    op.drop_table('loyalty_lots')
    op.drop_index('ix_loyalty_tier_changes_customer', table_name='loyalty_tier_changes')
    op.drop_table('loyalty_tier_changes')
    op.drop_index(op.f('ix_loyalty_members_tier_review_at'), table_name='loyalty_members')
    op.drop_index(op.f('ix_loyalty_members_tier'), table_name='loyalty_members')
    op.drop_index(op.f('ix_loyalty_members_next_due_at'), table_name='loyalty_members')
    op.drop_table('loyalty_members')
    op.drop_index('ix_loyalty_entries_customer_time', table_name='loyalty_entries')
    op.drop_table('loyalty_entries')
    op.drop_table('loyalty_tiers')
    op.drop_table('loyalty_rules')
    op.drop_table('loyalty_rewards')
    op.drop_table('loyalty_programs')
