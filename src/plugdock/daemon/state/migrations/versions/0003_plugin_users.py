"""Sandbox uids per package, moved from a file in the home into the database."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plugin_users",
        sa.Column("unique_identifier", sa.String(255), primary_key=True),
        sa.Column("uid", sa.Integer(), nullable=False, unique=True),
    )


def downgrade() -> None:
    op.drop_table("plugin_users")
