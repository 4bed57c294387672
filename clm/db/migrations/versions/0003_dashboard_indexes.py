"""dashboard indexes: customers.created_at and orders.placed_at, for the overview's weekly series

The overview counts new customers and sums revenue per week over the last 12 weeks; these indexes turn
both into range scans instead of full-table scans (1,000,000 customers: see docs/dashboard.md).

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_customers_created_at', 'customers', ['created_at'], unique=False)
    op.create_index('ix_orders_placed_at', 'orders', ['placed_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_orders_placed_at', table_name='orders')
    op.drop_index('ix_customers_created_at', table_name='customers')
