"""channels: the message outbox (messages, message_events), templates with versions, suppressions

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import clm.db.base

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')
_TIME = clm.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('templates',
    sa.Column('id', _ID, nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('current_version', sa.Integer(), nullable=False),
    sa.Column('created_at', _TIME, nullable=False),
    sa.Column('updated_at', _TIME, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_templates')),
    sa.UniqueConstraint('key', name=op.f('uq_templates_key'))
    )
    op.create_table('template_versions',
    sa.Column('id', _ID, nullable=False),
    sa.Column('template_id', _ID, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('variants', _JSON, nullable=False),
    sa.Column('provider', _JSON, nullable=False),
    sa.Column('created_by', sa.String(length=255), nullable=True),
    sa.Column('created_at', _TIME, nullable=False),
    sa.ForeignKeyConstraint(['template_id'], ['templates.id'], name=op.f('fk_template_versions_template_id_templates'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_template_versions')),
    sa.UniqueConstraint('template_id', 'version', name='uq_template_versions_template_version')
    )
    op.create_table('messages',
    sa.Column('id', _ID, nullable=False),
    sa.Column('customer_id', _ID, nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('template_key', sa.String(length=100), nullable=False),
    sa.Column('template_version', sa.Integer(), nullable=True),
    sa.Column('locale', sa.String(length=8), nullable=True),
    sa.Column('subject', sa.Text(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('html', sa.Text(), nullable=True),
    sa.Column('data', _JSON, nullable=False),
    sa.Column('address', sa.String(length=320), nullable=True),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('deferred_until', _TIME, nullable=True),
    sa.Column('provider', sa.String(length=32), nullable=True),
    sa.Column('provider_id', sa.String(length=255), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('broadcast_id', _ID, nullable=True),
    sa.Column('journey_id', _ID, nullable=True),
    sa.Column('journey_run_id', _ID, nullable=True),
    sa.Column('created_at', _TIME, nullable=False),
    sa.Column('updated_at', _TIME, nullable=False),
    sa.Column('sent_at', _TIME, nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_messages_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messages')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_messages_idempotency_key'))
    )
    op.create_index(op.f('ix_messages_broadcast_id'), 'messages', ['broadcast_id'], unique=False)
    op.create_index('ix_messages_cap', 'messages', ['customer_id', 'purpose', 'sent_at'], unique=False)
    op.create_index('ix_messages_customer_time', 'messages', ['customer_id', 'created_at'], unique=False)
    op.create_index(op.f('ix_messages_journey_run_id'), 'messages', ['journey_run_id'], unique=False)
    op.create_index(op.f('ix_messages_provider_id'), 'messages', ['provider_id'], unique=False)
    op.create_index('ix_messages_status_time', 'messages', ['status', 'created_at'], unique=False)
    op.create_table('suppressions',
    sa.Column('id', _ID, nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('customer_id', _ID, nullable=True),
    sa.Column('message_id', _ID, nullable=True),
    sa.Column('at', _TIME, nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_suppressions_customer_id_customers'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suppressions')),
    sa.UniqueConstraint('channel', 'address', 'reason', name='uq_suppressions_channel_address_reason')
    )
    op.create_index(op.f('ix_suppressions_customer_id'), 'suppressions', ['customer_id'], unique=False)
    op.create_table('message_events',
    sa.Column('id', _ID, nullable=False),
    sa.Column('message_id', _ID, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('detail', _JSON, nullable=False),
    sa.Column('at', _TIME, nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_message_events_message_id_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_events'))
    )
    op.create_index(op.f('ix_message_events_message_id'), 'message_events', ['message_id'], unique=False)


def downgrade() -> None:
    op.drop_table('message_events')
    op.drop_table('suppressions')
    op.drop_table('messages')
    op.drop_table('template_versions')
    op.drop_table('templates')
