"""service desk: the inbound queue (webhook messages stored at once, processed in batches)

`service_inbound` holds each customer's message as it arrived, unique on (source, external_id); the
`service_ticket_numbers` sequence numbers tickets on PostgreSQL without a row lock held to the commit
(it starts after the last number the `code_sequences` counter gave).

Revision ID: 0022
Revises: 0021
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import clm.db.base

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('service_inbound',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('received_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('processed_at', clm.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ticket_id', sa.BigInteger(), nullable=True),
    sa.Column('message_id', sa.BigInteger(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_inbound')),
    sa.UniqueConstraint('source', 'external_id', name='uq_service_inbound_source')
    )
    op.create_index('ix_service_inbound_waiting', 'service_inbound', ['id'], unique=False,
                    postgresql_where=sa.text('processed_at IS NULL'), sqlite_where=sa.text('processed_at IS NULL'))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("CREATE SEQUENCE service_ticket_numbers")
        op.execute("SELECT setval('service_ticket_numbers', COALESCE((SELECT value FROM code_sequences "
                   "WHERE name = 'ticket'), 0) + 1, false)")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("INSERT INTO code_sequences (name, value) SELECT 'ticket', CASE WHEN is_called THEN last_value ELSE last_value - 1 END "
                   "FROM service_ticket_numbers "
                   "ON CONFLICT (name) DO UPDATE SET value = GREATEST(code_sequences.value, EXCLUDED.value)")
        op.execute("DROP SEQUENCE service_ticket_numbers")
    op.drop_index('ix_service_inbound_waiting', table_name='service_inbound',
                  postgresql_where=sa.text('processed_at IS NULL'), sqlite_where=sa.text('processed_at IS NULL'))
    op.drop_table('service_inbound')
