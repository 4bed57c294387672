"""customers: the email, phone, city and merged-into indexes cover only the rows where the column is set

New customers (anonymous visitors, most of them) arrive with none of these, and ingestion creates them
by the thousand: a full index paid an entry per NULL for nothing. Queries compare these columns with
values (`=`, `IN`), which both databases prove imply NOT NULL, so they use the partial indexes.

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


def downgrade() -> None:
    for column in _COLUMNS:
        op.drop_index(f"ix_customers_{column}", table_name="customers")
        op.create_index(f"ix_customers_{column}", "customers", [column])
