"""sales: leads, pipelines and stages, opportunities and their stage changes, activities, tasks,
lead-score models, code sequences

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import clm.db.base

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('code_sequences',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_code_sequences'))
    )
    op.create_table('lead_score_models',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('won', sa.Integer(), nullable=False),
    sa.Column('lost', sa.Integer(), nullable=False),
    sa.Column('auc', sa.Float(), nullable=True),
    sa.Column('params', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('trained_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lead_score_models'))
    )
    with op.batch_alter_table('lead_score_models', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lead_score_models_trained_at'), ['trained_at'], unique=False)

    op.create_table('pipelines',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pipelines')),
    sa.UniqueConstraint('name', name=op.f('uq_pipelines_name'))
    )
    op.create_table('pipeline_stages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('pipeline_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.String(length=32), nullable=False),
    sa.Column('name', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('probability', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.ForeignKeyConstraint(['pipeline_id'], ['pipelines.id'], name=op.f('fk_pipeline_stages_pipeline_id_pipelines'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pipeline_stages')),
    sa.UniqueConstraint('pipeline_id', 'key', name='uq_pipeline_stages_pipeline_key')
    )
    with op.batch_alter_table('pipeline_stages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pipeline_stages_pipeline_id'), ['pipeline_id'], unique=False)

    op.create_table('leads',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source', sa.String(length=24), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=True),
    sa.Column('campaign', sa.String(length=255), nullable=True),
    sa.Column('utm', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('unqualified_reason', sa.String(length=255), nullable=True),
    sa.Column('owner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('priority', sa.String(length=16), nullable=False),
    sa.Column('classification', sa.String(length=16), nullable=True),
    sa.Column('classification_manual', sa.Boolean(), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('score_kind', sa.String(length=16), nullable=True),
    sa.Column('score_detail', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('scored_at', clm.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('contacted_at', clm.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('converted_at', clm.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('status_changed_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_leads_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_leads_owner_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_leads')),
    sa.UniqueConstraint('code', name=op.f('uq_leads_code')),
    sa.UniqueConstraint('source', 'external_id', name='uq_leads_source_external_id')
    )
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_leads_campaign'), ['campaign'], unique=False)
        batch_op.create_index(batch_op.f('ix_leads_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_leads_owner_status', ['owner_id', 'status'], unique=False)
        batch_op.create_index('ix_leads_status_created', ['status', 'created_at'], unique=False)

    op.create_table('opportunities',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('lead_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('pipeline_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('stage_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('title', sa.String(length=255), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('products', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('expected_close_date', sa.Date(), nullable=True),
    sa.Column('priority', sa.String(length=16), nullable=False),
    sa.Column('owner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('close_reason', sa.String(length=255), nullable=True),
    sa.Column('closed_at', clm.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('stage_changed_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_opportunities_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_opportunities_lead_id_leads'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_opportunities_order_id_orders'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_opportunities_owner_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['pipeline_id'], ['pipelines.id'], name=op.f('fk_opportunities_pipeline_id_pipelines')),
    sa.ForeignKeyConstraint(['stage_id'], ['pipeline_stages.id'], name=op.f('fk_opportunities_stage_id_pipeline_stages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_opportunities')),
    sa.UniqueConstraint('code', name=op.f('uq_opportunities_code')),
    sa.UniqueConstraint('lead_id', name=op.f('uq_opportunities_lead_id'))
    )
    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_opportunities_closed_at'), ['closed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_opportunities_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_opportunities_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index('ix_opportunities_pipeline_stage', ['pipeline_id', 'stage_id'], unique=False)
        batch_op.create_index('ix_opportunities_status_close', ['status', 'expected_close_date'], unique=False)

    op.create_table('activities',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('lead_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('opportunity_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('occurred_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_activities_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_activities_lead_id_leads'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['opportunity_id'], ['opportunities.id'], name=op.f('fk_activities_opportunity_id_opportunities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_activities_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activities'))
    )
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.create_index('ix_activities_customer_time', ['customer_id', 'occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_activities_lead_id'), ['lead_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_activities_opportunity_id'), ['opportunity_id'], unique=False)

    op.create_table('opportunity_stage_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('opportunity_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('from_stage_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('to_stage_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('changed_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_opportunity_stage_changes_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['from_stage_id'], ['pipeline_stages.id'], name=op.f('fk_opportunity_stage_changes_from_stage_id_pipeline_stages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['opportunity_id'], ['opportunities.id'], name=op.f('fk_opportunity_stage_changes_opportunity_id_opportunities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['to_stage_id'], ['pipeline_stages.id'], name=op.f('fk_opportunity_stage_changes_to_stage_id_pipeline_stages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_opportunity_stage_changes_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_opportunity_stage_changes'))
    )
    with op.batch_alter_table('opportunity_stage_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_opportunity_stage_changes_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_opportunity_stage_changes_opportunity_id'), ['opportunity_id'], unique=False)

    op.create_table('tasks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('due_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('remind_at', clm.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reminded_at', clm.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('assignee_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('lead_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('opportunity_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('priority', sa.String(length=16), nullable=False),
    sa.Column('done_at', clm.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', clm.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], name=op.f('fk_tasks_assignee_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_tasks_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_tasks_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_tasks_lead_id_leads'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['opportunity_id'], ['opportunities.id'], name=op.f('fk_tasks_opportunity_id_opportunities'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tasks'))
    )
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.create_index('ix_tasks_assignee_open', ['assignee_id', 'done_at', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_tasks_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tasks_due_at'), ['due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_tasks_lead_id'), ['lead_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tasks_opportunity_id'), ['opportunity_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tasks_opportunity_id'))
        batch_op.drop_index(batch_op.f('ix_tasks_lead_id'))
        batch_op.drop_index(batch_op.f('ix_tasks_due_at'))
        batch_op.drop_index(batch_op.f('ix_tasks_customer_id'))
        batch_op.drop_index('ix_tasks_assignee_open')

    op.drop_table('tasks')
    with op.batch_alter_table('opportunity_stage_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_opportunity_stage_changes_opportunity_id'))
        batch_op.drop_index(batch_op.f('ix_opportunity_stage_changes_customer_id'))

    op.drop_table('opportunity_stage_changes')
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activities_opportunity_id'))
        batch_op.drop_index(batch_op.f('ix_activities_lead_id'))
        batch_op.drop_index('ix_activities_customer_time')

    op.drop_table('activities')
    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.drop_index('ix_opportunities_status_close')
        batch_op.drop_index('ix_opportunities_pipeline_stage')
        batch_op.drop_index(batch_op.f('ix_opportunities_owner_id'))
        batch_op.drop_index(batch_op.f('ix_opportunities_customer_id'))
        batch_op.drop_index(batch_op.f('ix_opportunities_closed_at'))

    op.drop_table('opportunities')
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_status_created')
        batch_op.drop_index('ix_leads_owner_status')
        batch_op.drop_index(batch_op.f('ix_leads_customer_id'))
        batch_op.drop_index(batch_op.f('ix_leads_campaign'))

    op.drop_table('leads')
    with op.batch_alter_table('pipeline_stages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pipeline_stages_pipeline_id'))

    op.drop_table('pipeline_stages')
    op.drop_table('pipelines')
    with op.batch_alter_table('lead_score_models', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lead_score_models_trained_at'))

    op.drop_table('lead_score_models')
    op.drop_table('code_sequences')
