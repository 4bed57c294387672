"""service desk: the "SLA at risk" view on partial indexes of running clocks (by due time, and by ticket with
the due time) instead of (state, due_at); elapsed triggers may count business hours

Revision ID: 0026
Revises: 0022
"""

import sqlalchemy as sa
from alembic import op

revision = '0026'
down_revision = '0022'
branch_labels = None
depends_on = None

RUNNING = sa.text("state = 'running'")


def upgrade() -> None:
    with op.batch_alter_table('service_sla_timers', schema=None) as batch_op:
        batch_op.drop_index('ix_service_sla_timers_state_due')
        batch_op.create_index('ix_service_sla_timers_running_due', ['due_at', 'ticket_id'], unique=False,
                              postgresql_where=RUNNING, sqlite_where=RUNNING)
        batch_op.create_index('ix_service_sla_timers_running_ticket', ['ticket_id', 'due_at'], unique=False,
                              postgresql_where=RUNNING, sqlite_where=RUNNING)
    with op.batch_alter_table('service_triggers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('business_hours', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('service_triggers', schema=None) as batch_op:
        batch_op.drop_column('business_hours')
    with op.batch_alter_table('service_sla_timers', schema=None) as batch_op:
        batch_op.drop_index('ix_service_sla_timers_running_ticket')
        batch_op.drop_index('ix_service_sla_timers_running_due')
        batch_op.create_index('ix_service_sla_timers_state_due', ['state', 'due_at'], unique=False)
