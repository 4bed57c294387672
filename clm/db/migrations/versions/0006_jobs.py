"""jobs: the durable job queue (jobs) and effects recorded once by idempotency key (job_effects)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import clm.db.base

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')
_TIME = clm.db.base.UTCDateTime(timezone=True)
_WAITING = sa.text("state IN ('available', 'retryable')")
_RUNNING = sa.text("state = 'running'")
_UNFINISHED = sa.text("state IN ('available', 'running', 'retryable')")


def upgrade() -> None:
    op.create_table('jobs',
    sa.Column('id', _ID, nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('args', _JSON, nullable=False),
    sa.Column('queue', sa.String(length=32), nullable=False),
    sa.Column('priority', sa.SmallInteger(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('scheduled_at', _TIME, nullable=False),
    sa.Column('attempted_at', _TIME, nullable=True),
    sa.Column('completed_at', _TIME, nullable=True),
    sa.Column('lease_expires_at', _TIME, nullable=True),
    sa.Column('locked_by', sa.String(length=128), nullable=True),
    sa.Column('errors', _JSON, nullable=False),
    sa.Column('unique_key', sa.String(length=255), nullable=True),
    sa.Column('created_at', _TIME, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs'))
    )
    op.create_index('ix_jobs_due', 'jobs', ['queue', 'priority', 'scheduled_at', 'id'], unique=False,
                    sqlite_where=_WAITING, postgresql_where=_WAITING)
    op.create_index('ix_jobs_lease', 'jobs', ['lease_expires_at'], unique=False,
                    sqlite_where=_RUNNING, postgresql_where=_RUNNING)
    op.create_index('ix_jobs_state', 'jobs', ['state', 'id'], unique=False)
    op.create_index('uq_jobs_unique_key', 'jobs', ['unique_key'], unique=True,
                    sqlite_where=_UNFINISHED, postgresql_where=_UNFINISHED)
    op.create_table('job_effects',
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('job_id', _ID, nullable=True),
    sa.Column('created_at', _TIME, nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_job_effects'))
    )


def downgrade() -> None:
    op.drop_table('job_effects')
    op.drop_index('uq_jobs_unique_key', table_name='jobs')
    op.drop_index('ix_jobs_state', table_name='jobs')
    op.drop_index('ix_jobs_lease', table_name='jobs')
    op.drop_index('ix_jobs_due', table_name='jobs')
    op.drop_table('jobs')
