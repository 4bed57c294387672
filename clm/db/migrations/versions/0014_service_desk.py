"""service desk: teams, agents, inboxes, tickets, conversations and messages, notes, the audit of changes,
custom fields, routing rules and settings, business calendars, SLA policies and timers; tasks.ticket_id

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import clm.db.base

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('service_calendars',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('hours', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('holiday_country', sa.String(length=2), nullable=True),
    sa.Column('closed_days', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_calendars')),
    sa.UniqueConstraint('name', name=op.f('uq_service_calendars_name'))
    )
    op.create_table('service_fields',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('label', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('choices', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('required', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_fields')),
    sa.UniqueConstraint('key', name=op.f('uq_service_fields_key'))
    )
    op.create_table('service_inboxes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('address', sa.String(length=320), nullable=True),
    sa.Column('language', sa.String(length=8), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_inboxes')),
    sa.UniqueConstraint('name', name=op.f('uq_service_inboxes_name'))
    )
    op.create_table('service_settings',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('value', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('updated_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_service_settings'))
    )
    op.create_table('service_teams',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_teams')),
    sa.UniqueConstraint('name', name=op.f('uq_service_teams_name'))
    )
    op.create_table('service_agents',
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('availability', sa.String(length=8), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('languages', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('last_assigned_at', clm.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('availability_changed_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_service_agents_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_service_agents'))
    )
    op.create_table('service_routing_rules',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('language', sa.String(length=8), nullable=True),
    sa.Column('tag', sa.String(length=64), nullable=True),
    sa.Column('tier', sa.String(length=32), nullable=True),
    sa.Column('segment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['segment_id'], ['segments.id'], name=op.f('fk_service_routing_rules_segment_id_segments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['team_id'], ['service_teams.id'], name=op.f('fk_service_routing_rules_team_id_service_teams'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_routing_rules'))
    )
    op.create_table('service_sla_policies',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('priority', sa.String(length=8), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('tier', sa.String(length=32), nullable=True),
    sa.Column('first_response_minutes', sa.Integer(), nullable=True),
    sa.Column('next_response_minutes', sa.Integer(), nullable=True),
    sa.Column('resolution_minutes', sa.Integer(), nullable=True),
    sa.Column('warn_before_minutes', sa.Integer(), nullable=False),
    sa.Column('escalation', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('calendar_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['calendar_id'], ['service_calendars.id'], name=op.f('fk_service_sla_policies_calendar_id_service_calendars'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_sla_policies')),
    sa.UniqueConstraint('name', name=op.f('uq_service_sla_policies_name'))
    )
    op.create_table('service_team_members',
    sa.Column('team_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['service_teams.id'], name=op.f('fk_service_team_members_team_id_service_teams'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_service_team_members_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('team_id', 'user_id', name=op.f('pk_service_team_members'))
    )
    with op.batch_alter_table('service_team_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_team_members_user_id'), ['user_id'], unique=False)

    op.create_table('service_tickets',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('number', sa.String(length=16), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('priority', sa.String(length=8), nullable=False),
    sa.Column('priority_rank', sa.SmallInteger(), nullable=False),
    sa.Column('vip', sa.Boolean(), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=True),
    sa.Column('tags', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('fields', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('inbox_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('language', sa.String(length=8), nullable=True),
    sa.Column('assignee_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('team_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('assignment_reason', sa.String(length=500), nullable=True),
    sa.Column('assigned_at', clm.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('merged_into_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('first_response_at', clm.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_customer_message_at', clm.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_agent_reply_at', clm.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('status_changed_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('solved_at', clm.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', clm.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], name=op.f('fk_service_tickets_assignee_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_service_tickets_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_service_tickets_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['inbox_id'], ['service_inboxes.id'], name=op.f('fk_service_tickets_inbox_id_service_inboxes'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['merged_into_id'], ['service_tickets.id'], name=op.f('fk_service_tickets_merged_into_id_service_tickets'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_service_tickets_order_id_orders'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['team_id'], ['service_teams.id'], name=op.f('fk_service_tickets_team_id_service_teams'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_tickets')),
    sa.UniqueConstraint('number', name=op.f('uq_service_tickets_number'))
    )
    with op.batch_alter_table('service_tickets', schema=None) as batch_op:
        batch_op.create_index('ix_service_tickets_assignee_status', ['assignee_id', 'status'], unique=False)
        batch_op.create_index('ix_service_tickets_customer_time', ['customer_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_service_tickets_order_id'), ['order_id'], unique=False)
        batch_op.create_index('ix_service_tickets_queue', ['status', 'assignee_id', 'priority_rank', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_service_tickets_team_id'), ['team_id'], unique=False)

    op.create_table('service_conversations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('ticket_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('inbox_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('thread_key', sa.String(length=255), nullable=True),
    sa.Column('last_message_at', clm.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_service_conversations_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['inbox_id'], ['service_inboxes.id'], name=op.f('fk_service_conversations_inbox_id_service_inboxes'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['service_tickets.id'], name=op.f('fk_service_conversations_ticket_id_service_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_conversations'))
    )
    with op.batch_alter_table('service_conversations', schema=None) as batch_op:
        batch_op.create_index('ix_service_conversations_customer_time', ['customer_id', 'last_message_at'], unique=False)
        batch_op.create_index('ix_service_conversations_inbox_thread', ['inbox_id', 'thread_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_service_conversations_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('service_notes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('ticket_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('author_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('mentions', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_service_notes_author_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_service_notes_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ticket_id'], ['service_tickets.id'], name=op.f('fk_service_notes_ticket_id_service_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_notes'))
    )
    with op.batch_alter_table('service_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_notes_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_service_notes_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('service_sla_timers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('ticket_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('policy_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('metric', sa.String(length=16), nullable=False),
    sa.Column('target_minutes', sa.Integer(), nullable=False),
    sa.Column('started_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('due_at', clm.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('explanation', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('warned_at', clm.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('breached_at', clm.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('met_at', clm.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_service_sla_timers_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['policy_id'], ['service_sla_policies.id'], name=op.f('fk_service_sla_timers_policy_id_service_sla_policies'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['service_tickets.id'], name=op.f('fk_service_sla_timers_ticket_id_service_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_sla_timers'))
    )
    with op.batch_alter_table('service_sla_timers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_sla_timers_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_service_sla_timers_state_due', ['state', 'due_at'], unique=False)
        batch_op.create_index('ix_service_sla_timers_ticket', ['ticket_id', 'metric'], unique=False)

    op.create_table('service_ticket_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('ticket_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('actor', sa.String(length=16), nullable=False),
    sa.Column('field', sa.String(length=64), nullable=False),
    sa.Column('values', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_service_ticket_changes_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ticket_id'], ['service_tickets.id'], name=op.f('fk_service_ticket_changes_ticket_id_service_tickets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_service_ticket_changes_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_ticket_changes'))
    )
    with op.batch_alter_table('service_ticket_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_ticket_changes_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_service_ticket_changes_ticket', ['ticket_id', 'at', 'id'], unique=False)

    op.create_table('service_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('conversation_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('ticket_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('author_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=True),
    sa.Column('attachments', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_service_messages_author_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['conversation_id'], ['service_conversations.id'], name=op.f('fk_service_messages_conversation_id_service_conversations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_service_messages_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ticket_id'], ['service_tickets.id'], name=op.f('fk_service_messages_ticket_id_service_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_messages')),
    sa.UniqueConstraint('external_id', name=op.f('uq_service_messages_external_id'))
    )
    with op.batch_alter_table('service_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_messages_conversation_id'), ['conversation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_service_messages_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_service_messages_ticket_time', ['ticket_id', 'created_at'], unique=False)

    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ticket_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.create_index(batch_op.f('ix_tasks_ticket_id'), ['ticket_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_tasks_ticket_id_service_tickets'), 'service_tickets', ['ticket_id'], ['id'], ondelete='SET NULL')



def downgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_tasks_ticket_id_service_tickets'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_tasks_ticket_id'))
        batch_op.drop_column('ticket_id')

    with op.batch_alter_table('service_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_service_messages_ticket_time')
        batch_op.drop_index(batch_op.f('ix_service_messages_customer_id'))
        batch_op.drop_index(batch_op.f('ix_service_messages_conversation_id'))

    op.drop_table('service_messages')
    with op.batch_alter_table('service_ticket_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_service_ticket_changes_ticket')
        batch_op.drop_index(batch_op.f('ix_service_ticket_changes_customer_id'))

    op.drop_table('service_ticket_changes')
    with op.batch_alter_table('service_sla_timers', schema=None) as batch_op:
        batch_op.drop_index('ix_service_sla_timers_ticket')
        batch_op.drop_index('ix_service_sla_timers_state_due')
        batch_op.drop_index(batch_op.f('ix_service_sla_timers_customer_id'))

    op.drop_table('service_sla_timers')
    with op.batch_alter_table('service_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_service_notes_ticket_id'))
        batch_op.drop_index(batch_op.f('ix_service_notes_customer_id'))

    op.drop_table('service_notes')
    with op.batch_alter_table('service_conversations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_service_conversations_ticket_id'))
        batch_op.drop_index('ix_service_conversations_inbox_thread')
        batch_op.drop_index('ix_service_conversations_customer_time')

    op.drop_table('service_conversations')
    with op.batch_alter_table('service_tickets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_service_tickets_team_id'))
        batch_op.drop_index('ix_service_tickets_queue')
        batch_op.drop_index(batch_op.f('ix_service_tickets_order_id'))
        batch_op.drop_index('ix_service_tickets_customer_time')
        batch_op.drop_index('ix_service_tickets_assignee_status')

    op.drop_table('service_tickets')
    with op.batch_alter_table('service_team_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_service_team_members_user_id'))

    op.drop_table('service_team_members')
    op.drop_table('service_sla_policies')
    op.drop_table('service_routing_rules')
    op.drop_table('service_agents')
    op.drop_table('service_teams')
    op.drop_table('service_settings')
    op.drop_table('service_inboxes')
    op.drop_table('service_fields')
    op.drop_table('service_calendars')
