"""sales: the deal page and scoring speed

Reserved in session 15 so that parallel work keeps one chain; empty until its work needs a schema change.

Revision ID: 0025
Revises: 0024
"""

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
