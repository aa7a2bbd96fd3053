"""job cancel: a canceled count per function, and when a running job was asked to stop

Revision ID: 5e6f7a8b9ca3
Revises: 4d5e6f7a8b92
Create Date: 2026-12-04

"""

import sqlalchemy as sa
from alembic import op

revision = "5e6f7a8b9ca3"
down_revision = "4d5e6f7a8b92"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("functions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("canceled_count", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cancel_requested_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("cancel_requested_at")
    with op.batch_alter_table("functions", schema=None) as batch_op:
        batch_op.drop_column("canceled_count")
