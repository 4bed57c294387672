"""segments: segment_sizes (a segment's member count per day, for the size-over-time chart)

Revision ID: 0008
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0011'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('segment_sizes',
    sa.Column('segment_id', _ID, nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('members', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['segment_id'], ['segments.id'], name=op.f('fk_segment_sizes_segment_id_segments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('segment_id', 'day', name=op.f('pk_segment_sizes'))
    )


def downgrade() -> None:
    op.drop_table('segment_sizes')
