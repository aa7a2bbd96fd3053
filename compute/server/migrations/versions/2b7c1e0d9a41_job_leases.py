"""job leases

Revision ID: 2b7c1e0d9a41
Revises: 17fa33b980f5
Create Date: 2026-11-25

"""

import sqlalchemy as sa
from alembic import op

revision = "2b7c1e0d9a41"
down_revision = "17fa33b980f5"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("lease_expires_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("lease_owner")
