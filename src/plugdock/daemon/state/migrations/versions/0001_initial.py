"""Initial schema: packages, installations, install tasks, environments, plugin storage."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plugins",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("unique_identifier", sa.String(255), nullable=False, unique=True, index=True),
        sa.Column("plugin_id", sa.String(255), nullable=False, index=True),
        sa.Column("declaration", sa.JSON(), nullable=False),
        sa.Column("verification", sa.JSON(), nullable=True),
        sa.Column("env_id", sa.String(64), nullable=True),
        sa.Column("installed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "installations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False, index=True),
        sa.Column("plugin_id", sa.String(255), nullable=False, index=True),
        sa.Column("unique_identifier", sa.String(255), nullable=False, index=True),
        sa.Column("runtime_type", sa.String(32), nullable=False),
        sa.Column("source", sa.String(63), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant_id", "plugin_id", name="uq_installation_tenant_plugin"),
    )
    op.create_table(
        "install_tasks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("total_plugins", sa.Integer(), nullable=False),
        sa.Column("completed_plugins", sa.Integer(), nullable=False),
        sa.Column("plugins", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "environments",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("python_version", sa.String(32), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "plugin_storage",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("plugin_id", sa.String(255), primary_key=True),
        sa.Column("key", sa.String(256), primary_key=True),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
    )
    op.create_table(
        "plugin_storage_usage",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("plugin_id", sa.String(255), primary_key=True),
        sa.Column("used", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    for table in ("plugin_storage_usage", "plugin_storage", "environments", "install_tasks", "installations",
                  "plugins"):
        op.drop_table(table)
