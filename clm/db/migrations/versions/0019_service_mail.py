"""service desk: inbound mail and replies: attachments, the mail quarantine, a message's HTML and headers

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

from clm.db.base import BigId, Json, UTCDateTime

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('service_messages') as batch:
        batch.add_column(sa.Column('html', sa.Text(), nullable=True))
        batch.add_column(sa.Column('meta', Json, nullable=False, server_default='{}'))
    op.create_table(
        'service_attachments',
        sa.Column('id', BigId, nullable=False),
        sa.Column('message_id', BigId, nullable=False),
        sa.Column('customer_id', BigId, nullable=False),
        sa.Column('filename', sa.String(255), nullable=False),
        sa.Column('content_type', sa.String(127), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(64), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_service_attachments')),
        sa.ForeignKeyConstraint(['message_id'], ['service_messages.id'], ondelete='CASCADE',
                                name=op.f('fk_service_attachments_message_id_service_messages')),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE',
                                name=op.f('fk_service_attachments_customer_id_customers')),
    )
    op.create_index('ix_service_attachments_message_id', 'service_attachments', ['message_id'])
    op.create_index('ix_service_attachments_customer_id', 'service_attachments', ['customer_id'])
    op.create_table(
        'service_mail_quarantine',
        sa.Column('id', BigId, nullable=False),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('source', sa.String(16), nullable=False),
        sa.Column('envelope_from', sa.String(320), nullable=True),
        sa.Column('envelope_to', sa.String(320), nullable=True),
        sa.Column('sender', sa.String(320), nullable=True),
        sa.Column('subject', sa.String(255), nullable=True),
        sa.Column('message_id_header', sa.String(255), nullable=True),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(64), nullable=False),
        sa.Column('raw', sa.LargeBinary(), nullable=False),
        sa.Column('received_at', UTCDateTime, nullable=False),
        sa.Column('released_at', UTCDateTime, nullable=True),
        sa.Column('ticket_id', BigId, nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_service_mail_quarantine')),
        sa.UniqueConstraint('sha256', name=op.f('uq_service_mail_quarantine_sha256')),
        sa.ForeignKeyConstraint(['ticket_id'], ['service_tickets.id'], ondelete='SET NULL',
                                name=op.f('fk_service_mail_quarantine_ticket_id_service_tickets')),
    )
    op.create_index('ix_service_mail_quarantine_time', 'service_mail_quarantine', ['received_at'])


def downgrade() -> None:
    op.drop_table('service_mail_quarantine')
    op.drop_table('service_attachments')
    with op.batch_alter_table('service_messages') as batch:
        batch.drop_column('meta')
        batch.drop_column('html')
