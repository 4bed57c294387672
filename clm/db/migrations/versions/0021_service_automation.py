"""service desk: calls (the CTI caller log), automation (triggers and their runs, canned replies, macros) and
satisfaction surveys (CSAT for solved tickets, NPS from journeys)

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import clm.db.base

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('service_canned_replies',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('bodies', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_canned_replies')),
    sa.UniqueConstraint('key', name=op.f('uq_service_canned_replies_key'))
    )
    op.create_table('service_macros',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('actions', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_macros')),
    sa.UniqueConstraint('name', name=op.f('uq_service_macros_name'))
    )
    op.create_table('service_triggers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('event', sa.String(length=8), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('minutes', sa.Integer(), nullable=True),
    sa.Column('since', sa.String(length=24), nullable=True),
    sa.Column('conditions', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('actions', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_triggers')),
    sa.UniqueConstraint('name', name=op.f('uq_service_triggers_name'))
    )
    op.create_table('service_surveys',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=4), nullable=False),
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('ticket_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('agent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('team_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('journey_run_id', sa.BigInteger(), nullable=True),
    sa.Column('message_id', sa.BigInteger(), nullable=True),
    sa.Column('score', sa.SmallInteger(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('sent_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('answered_at', clm.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['users.id'], name=op.f('fk_service_surveys_agent_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_service_surveys_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['team_id'], ['service_teams.id'], name=op.f('fk_service_surveys_team_id_service_teams'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['service_tickets.id'], name=op.f('fk_service_surveys_ticket_id_service_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_surveys')),
    sa.UniqueConstraint('key', name=op.f('uq_service_surveys_key'))
    )
    with op.batch_alter_table('service_surveys', schema=None) as batch_op:
        batch_op.create_index('ix_service_surveys_customer', ['customer_id', 'sent_at'], unique=False)
        batch_op.create_index('ix_service_surveys_kind_answered', ['kind', 'answered_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_service_surveys_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('service_trigger_runs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('trigger_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('ticket_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('occasion', sa.String(length=64), nullable=False),
    sa.Column('outcome', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_service_trigger_runs_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ticket_id'], ['service_tickets.id'], name=op.f('fk_service_trigger_runs_ticket_id_service_tickets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['trigger_id'], ['service_triggers.id'], name=op.f('fk_service_trigger_runs_trigger_id_service_triggers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_trigger_runs')),
    sa.UniqueConstraint('trigger_id', 'ticket_id', 'occasion', name=op.f('uq_service_trigger_runs_trigger_id'))
    )
    with op.batch_alter_table('service_trigger_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_trigger_runs_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_service_trigger_runs_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('service_calls',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('call_id', sa.String(length=250), nullable=False),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('from_number', sa.String(length=64), nullable=False),
    sa.Column('to_number', sa.String(length=64), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('users', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('queue', sa.String(length=120), nullable=True),
    sa.Column('agent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('cause', sa.String(length=32), nullable=True),
    sa.Column('started_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('answered_at', clm.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended_at', clm.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('duration_seconds', sa.Integer(), nullable=True),
    sa.Column('recording_url', sa.String(length=2000), nullable=True),
    sa.Column('task_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['users.id'], name=op.f('fk_service_calls_agent_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_service_calls_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_service_calls_task_id_tasks'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_calls')),
    sa.UniqueConstraint('call_id', name=op.f('uq_service_calls_call_id'))
    )
    with op.batch_alter_table('service_calls', schema=None) as batch_op:
        batch_op.create_index('ix_service_calls_customer_time', ['customer_id', 'started_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('service_calls', schema=None) as batch_op:
        batch_op.drop_index('ix_service_calls_customer_time')

    op.drop_table('service_calls')
    with op.batch_alter_table('service_trigger_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_service_trigger_runs_ticket_id'))
        batch_op.drop_index(batch_op.f('ix_service_trigger_runs_customer_id'))

    op.drop_table('service_trigger_runs')
    with op.batch_alter_table('service_surveys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_service_surveys_ticket_id'))
        batch_op.drop_index('ix_service_surveys_kind_answered')
        batch_op.drop_index('ix_service_surveys_customer')

    op.drop_table('service_surveys')
    op.drop_table('service_triggers')
    op.drop_table('service_macros')
    op.drop_table('service_canned_replies')
