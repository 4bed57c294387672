"""segments: segments (dynamic rule trees and static lists) and segment_members (entered_at, exited_at)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import clm.db.base

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('segments',
    sa.Column('id', _ID, nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('rules', _JSON, nullable=True),
    sa.Column('depends_on', _JSON, nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('refreshed_at', clm.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_segments')),
    sa.UniqueConstraint('name', name=op.f('uq_segments_name'))
    )
    op.create_table('segment_members',
    sa.Column('id', _ID, nullable=False),
    sa.Column('segment_id', _ID, nullable=False),
    sa.Column('customer_id', _ID, nullable=False),
    sa.Column('entered_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('exited_at', clm.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_segment_members_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['segment_id'], ['segments.id'], name=op.f('fk_segment_members_segment_id_segments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_segment_members'))
    )
    op.create_index('ix_segment_members_current', 'segment_members', ['segment_id', 'exited_at', 'customer_id'], unique=False)
    op.create_index(op.f('ix_segment_members_customer_id'), 'segment_members', ['customer_id'], unique=False)
    op.create_index('uq_segment_members_one_current', 'segment_members', ['segment_id', 'customer_id'], unique=True,
                    sqlite_where=sa.text('exited_at IS NULL'), postgresql_where=sa.text('exited_at IS NULL'))


def downgrade() -> None:
    op.drop_index('uq_segment_members_one_current', table_name='segment_members')
    op.drop_index(op.f('ix_segment_members_customer_id'), table_name='segment_members')
    op.drop_index('ix_segment_members_current', table_name='segment_members')
    op.drop_table('segment_members')
    op.drop_table('segments')
