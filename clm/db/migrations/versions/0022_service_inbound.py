"""service desk: the inbound queue (webhook messages stored at once, processed in batches)

Reserved in session 15 so that parallel work keeps one chain; empty until its work needs a schema change.

Revision ID: 0022
Revises: 0021
"""

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
