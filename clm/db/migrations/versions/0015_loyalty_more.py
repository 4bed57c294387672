"""loyalty: the audit of staff changes made from the dashboard (settings, rules, tiers, rewards, adjustments),
and the program's referral address

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import clm.db.base

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')
_TIME = clm.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('loyalty_programs') as batch:
        batch.add_column(sa.Column('referral_url', sa.String(length=500), server_default='', nullable=False))
    op.create_table('loyalty_audit',
    sa.Column('id', _ID, nullable=False),
    sa.Column('user_id', _ID, nullable=True),
    sa.Column('user_email', sa.String(length=255), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('target', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.String(length=255), nullable=True),
    sa.Column('details', _JSON, nullable=False),
    sa.Column('created_at', _TIME, nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_loyalty_audit_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_audit'))
    )
    op.create_index('ix_loyalty_audit_time', 'loyalty_audit', ['created_at'], unique=False)
    op.create_index(op.f('ix_loyalty_audit_user_id'), 'loyalty_audit', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_loyalty_audit_user_id'), table_name='loyalty_audit')
    op.drop_index('ix_loyalty_audit_time', table_name='loyalty_audit')
    op.drop_table('loyalty_audit')
    with op.batch_alter_table('loyalty_programs') as batch:
        batch.drop_column('referral_url')
