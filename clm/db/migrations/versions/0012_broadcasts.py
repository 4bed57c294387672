"""channels: broadcasts (a template sent to a segment now or at a set time, with its report)

Revision ID: 0012
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import clm.db.base

revision = '0012'
down_revision = '0009'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')
_TIME = clm.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('broadcasts',
    sa.Column('id', _ID, nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('template_key', sa.String(length=100), nullable=False),
    sa.Column('segment_id', _ID, nullable=True),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('context', _JSON, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('send_at', _TIME, nullable=True),
    sa.Column('attribution_days', sa.Integer(), nullable=False),
    sa.Column('recipients', sa.Integer(), nullable=False),
    sa.Column('job_id', _ID, nullable=True),
    sa.Column('created_by', sa.String(length=255), nullable=True),
    sa.Column('created_at', _TIME, nullable=False),
    sa.Column('updated_at', _TIME, nullable=False),
    sa.Column('started_at', _TIME, nullable=True),
    sa.Column('queued_at', _TIME, nullable=True),
    sa.Column('finished_at', _TIME, nullable=True),
    sa.ForeignKeyConstraint(['segment_id'], ['segments.id'], name=op.f('fk_broadcasts_segment_id_segments'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_broadcasts'))
    )


def downgrade() -> None:
    op.drop_table('broadcasts')
