"""journeys: definitions with versions, runs (one per customer and entry), steps passed

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import clm.db.base

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')
_TIME = clm.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('journeys',
    sa.Column('id', _ID, nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('trigger_type', sa.String(length=32), nullable=False),
    sa.Column('swept_on', sa.Date(), nullable=True),
    sa.Column('activated_at', _TIME, nullable=True),
    sa.Column('created_at', _TIME, nullable=False),
    sa.Column('updated_at', _TIME, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journeys')),
    sa.UniqueConstraint('name', name=op.f('uq_journeys_name'))
    )
    op.create_index(op.f('ix_journeys_trigger_type'), 'journeys', ['trigger_type'], unique=False)
    op.create_table('journey_versions',
    sa.Column('id', _ID, nullable=False),
    sa.Column('journey_id', _ID, nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('definition', _JSON, nullable=False),
    sa.Column('published_at', _TIME, nullable=True),
    sa.Column('created_at', _TIME, nullable=False),
    sa.ForeignKeyConstraint(['journey_id'], ['journeys.id'], name=op.f('fk_journey_versions_journey_id_journeys'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journey_versions')),
    sa.UniqueConstraint('journey_id', 'number', name=op.f('uq_journey_versions_journey_id'))
    )
    op.create_table('journey_runs',
    sa.Column('id', _ID, nullable=False),
    sa.Column('journey_id', _ID, nullable=False),
    sa.Column('version_id', _ID, nullable=False),
    sa.Column('customer_id', _ID, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('node_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('entry_key', sa.String(length=255), nullable=False),
    sa.Column('context', _JSON, nullable=False),
    sa.Column('variant', sa.String(length=64), nullable=True),
    sa.Column('wait_event', sa.String(length=255), nullable=True),
    sa.Column('due_at', _TIME, nullable=True),
    sa.Column('goal_until', _TIME, nullable=True),
    sa.Column('converted_at', _TIME, nullable=True),
    sa.Column('entered_at', _TIME, nullable=False),
    sa.Column('ended_at', _TIME, nullable=True),
    sa.Column('exit_reason', sa.String(length=64), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('updated_at', _TIME, nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_journey_runs_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['journey_id'], ['journeys.id'], name=op.f('fk_journey_runs_journey_id_journeys'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['version_id'], ['journey_versions.id'], name=op.f('fk_journey_runs_version_id_journey_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journey_runs')),
    sa.UniqueConstraint('journey_id', 'customer_id', 'entry_key', name=op.f('uq_journey_runs_journey_id'))
    )
    op.create_index('ix_journey_runs_customer', 'journey_runs', ['customer_id', 'ended_at'], unique=False)
    op.create_index('ix_journey_runs_position', 'journey_runs', ['journey_id', 'status', 'node_id'], unique=False)
    op.create_index(op.f('ix_journey_runs_version_id'), 'journey_runs', ['version_id'], unique=False)
    op.create_index('uq_journey_runs_open', 'journey_runs', ['journey_id', 'customer_id'], unique=True, sqlite_where=sa.text('ended_at IS NULL'), postgresql_where=sa.text('ended_at IS NULL'))
    op.create_table('journey_steps',
    sa.Column('id', _ID, nullable=False),
    sa.Column('run_id', _ID, nullable=False),
    sa.Column('journey_id', _ID, nullable=False),
    sa.Column('customer_id', _ID, nullable=False),
    sa.Column('node_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=64), nullable=False),
    sa.Column('detail', _JSON, nullable=False),
    sa.Column('at', _TIME, nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_journey_steps_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['journey_runs.id'], name=op.f('fk_journey_steps_run_id_journey_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journey_steps')),
    sa.UniqueConstraint('run_id', 'seq', name=op.f('uq_journey_steps_run_id'))
    )
    op.create_index(op.f('ix_journey_steps_customer_id'), 'journey_steps', ['customer_id'], unique=False)
    op.create_index('ix_journey_steps_node', 'journey_steps', ['journey_id', 'node_id'], unique=False)


def downgrade() -> None:
    op.drop_table('journey_steps')
    op.drop_table('journey_runs')
    op.drop_table('journey_versions')
    op.drop_index(op.f('ix_journeys_trigger_type'), table_name='journeys')
    op.drop_table('journeys')
