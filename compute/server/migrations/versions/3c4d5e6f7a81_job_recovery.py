"""job recovery: worker-loss budget and when a job last became pending

Revision ID: 3c4d5e6f7a81
Revises: 2b7c1e0d9a41
Create Date: 2026-12-02

"""

import sqlalchemy as sa
from alembic import op

revision = "3c4d5e6f7a81"
down_revision = "2b7c1e0d9a41"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("lost_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("enqueued_at", sa.DateTime(), nullable=True))
        batch_op.create_index(
            "ix_jobs_status_lease", ["status", "lease_expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_status_lease")
        batch_op.drop_column("enqueued_at")
        batch_op.drop_column("lost_count")
