"""customers: the email, phone, city and merged-into indexes cover only the rows where the column is set

New customers (anonymous visitors, most of them) arrive with none of these, and ingestion creates them
by the thousand: a full index paid an entry per NULL for nothing. Queries compare these columns with
values (`=`, `IN`), which both databases prove imply NOT NULL, so they use the partial indexes.

loyalty_lots: an index on customer_id over every lot. The partial index of open lots did not serve
merges, which move a customer's spent lots too: every ingestion request that merged a visitor into a
member scanned the whole table.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

_COLUMNS = ("email", "phone", "city", "merged_into_id")


def upgrade() -> None:
    for column in _COLUMNS:
        op.drop_index(f"ix_customers_{column}", table_name="customers")
        condition = sa.text(f"{column} IS NOT NULL")
        op.create_index(f"ix_customers_{column}", "customers", [column],
                        sqlite_where=condition, postgresql_where=condition)
    op.create_index("ix_loyalty_lots_customer", "loyalty_lots", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_loyalty_lots_customer", table_name="loyalty_lots")
    for column in _COLUMNS:
        op.drop_index(f"ix_customers_{column}", table_name="customers")
        op.create_index(f"ix_customers_{column}", "customers", [column])
