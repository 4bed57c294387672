"""channels: drop ix_messages_customer_time, which ix_messages_cap covers

Every query on `messages` by customer (the customer 360 and the messages page, stop_queued, the
reply and read look-ups, the frequency cap, loyalty's reminder check) starts with `customer_id`, the
leading column of ix_messages_cap (customer_id, purpose, sent_at); a customer's few messages are then
sorted by time in memory. The second index on customer_id cost every queued message one more index
insert (a 100,000-recipient broadcast writes 100,000 rows at once) and bought nothing.

Revision ID: 0018
Revises: 0017
"""

from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_messages_customer_time', table_name='messages')


def downgrade() -> None:
    op.create_index('ix_messages_customer_time', 'messages', ['customer_id', 'created_at'], unique=False)
