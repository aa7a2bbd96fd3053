"""tokens: every issued token by its JWT id, and per-user cutoffs, so tokens can be revoked

Revision ID: 6f7a8b9cadb4
Revises: 5e6f7a8b9ca3
Create Date: 2026-12-12

"""

import sqlalchemy as sa
from alembic import op

revision = "6f7a8b9cadb4"
down_revision = "5e6f7a8b9ca3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("creation_date", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.create_index("ix_tokens_user_created", ["user_id", "creation_date"], unique=False)
    op.create_table(
        "token_cutoffs",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("not_before", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
    )


def downgrade() -> None:
    op.drop_table("token_cutoffs")
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_tokens_user_created")
    op.drop_table("tokens")
