"""channels: broadcast queueing and sending speed

Reserved in session 15 so that parallel work keeps one chain; empty until its work needs a schema change.

Revision ID: 0024
Revises: 0023
"""

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
