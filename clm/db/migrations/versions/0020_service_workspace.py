"""service desk: the web chat's sites (public key, allowed origins, greeting, the chat inbox)

The agent workspace, its live updates (read from the outbox) and reports need no table of their own.

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import clm.db.base

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('service_chat_sites',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('public_key', sa.String(length=64), nullable=False),
    sa.Column('inbox_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('origins', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('greeting', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['inbox_id'], ['service_inboxes.id'], name=op.f('fk_service_chat_sites_inbox_id_service_inboxes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_chat_sites')),
    sa.UniqueConstraint('name', name=op.f('uq_service_chat_sites_name')),
    sa.UniqueConstraint('public_key', name=op.f('uq_service_chat_sites_public_key'))
    )
    op.create_index(op.f('ix_service_chat_sites_inbox_id'), 'service_chat_sites', ['inbox_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_service_chat_sites_inbox_id'), table_name='service_chat_sites')
    op.drop_table('service_chat_sites')
