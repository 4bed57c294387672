"""sales: web forms (lead_forms), assignment rules, rule points (lead_point_rules), staff notifications;
leads' assignment, first-contact SLA and rule-points columns

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import clm.db.base

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('lead_assignment_rules',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('sources', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('provinces', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('product_lines', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('user_ids', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('next_index', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lead_assignment_rules'))
    )
    op.create_table('lead_forms',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('fields', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('campaign', sa.String(length=255), nullable=True),
    sa.Column('owner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('thank_you', sa.String(length=1000), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_lead_forms_owner_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lead_forms')),
    sa.UniqueConstraint('key', name=op.f('uq_lead_forms_key'))
    )
    op.create_table('lead_point_rules',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('rule', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('half_life_days', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lead_point_rules'))
    )
    op.create_table('staff_notifications',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('text', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('link', sa.String(length=255), nullable=True),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('read_at', clm.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_staff_notifications_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_notifications')),
    sa.UniqueConstraint('key', name=op.f('uq_staff_notifications_key'))
    )
    with op.batch_alter_table('staff_notifications', schema=None) as batch_op:
        batch_op.create_index('ix_staff_notifications_user_read', ['user_id', 'read_at', 'created_at'], unique=False)

    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.create_index('ix_opportunities_board', ['pipeline_id', 'stage_id', 'stage_changed_at', 'id', 'value'],
                              unique=False)

    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('assignment', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False,
                  server_default=sa.text("'{}'")))
        batch_op.add_column(sa.Column('first_contact_due_at', clm.db.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('first_contact_breached_at', clm.db.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('rule_points', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('rule_points_detail', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False,
                  server_default=sa.text("'[]'")))



def downgrade() -> None:
    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.drop_index('ix_opportunities_board')

    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_column('rule_points_detail')
        batch_op.drop_column('rule_points')
        batch_op.drop_column('first_contact_breached_at')
        batch_op.drop_column('first_contact_due_at')
        batch_op.drop_column('assignment')

    with op.batch_alter_table('staff_notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_staff_notifications_user_read')

    op.drop_table('staff_notifications')
    op.drop_table('lead_point_rules')
    op.drop_table('lead_forms')
    op.drop_table('lead_assignment_rules')
