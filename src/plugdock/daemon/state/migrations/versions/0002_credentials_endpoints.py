"""Encrypted provider credentials and endpoints."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credentials",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("plugin_id", sa.String(255), primary_key=True),
        sa.Column("provider", sa.String(255), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "endpoints",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("hook_id", sa.String(127), nullable=False, unique=True, index=True),
        sa.Column("tenant_id", sa.String(64), nullable=False, index=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("plugin_id", sa.String(255), nullable=False, index=True),
        sa.Column("unique_identifier", sa.String(255), nullable=False),
        sa.Column("name", sa.String(127), nullable=False),
        sa.Column("enabled", sa.Integer(), nullable=False),
        sa.Column("settings", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("endpoints")
    op.drop_table("credentials")
