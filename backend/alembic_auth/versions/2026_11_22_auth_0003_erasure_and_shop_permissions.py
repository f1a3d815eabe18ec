"""erasure and shop permissions

Revision ID: auth_0003
Revises: auth_0002
Create Date: 2026-11-22 02:41:25.328482
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = 'auth_0003'
down_revision: str | None = 'auth_0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Permissions of the app database's shop, granted role by role.
PERMISSIONS = {
    "products:write": ("Create, change and delete products", ["admin"]),
    "orders:read": ("Read one's own orders", ["admin", "member"]),
    "orders:write": ("Place and cancel one's own orders", ["admin", "member"]),
}

permissions = sa.table("permissions", sa.column("id"), sa.column("name"), sa.column("description"))
roles = sa.table("roles", sa.column("id"), sa.column("name"))
role_permissions = sa.table("role_permissions", sa.column("role_id"), sa.column("permission_id"))


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deleting_at', sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=True))

    op.bulk_insert(permissions, [{"name": name, "description": description}
                                 for name, (description, _) in PERMISSIONS.items()])
    for name, (_, granted_to) in PERMISSIONS.items():
        op.execute(
            role_permissions.insert().from_select(
                ["role_id", "permission_id"],
                sa.select(roles.c.id, permissions.c.id)
                .select_from(roles.join(permissions, sa.true()))
                .where(roles.c.name.in_(granted_to), permissions.c.name == name),
            )
        )


def downgrade() -> None:
    granted = sa.select(permissions.c.id).where(permissions.c.name.in_(list(PERMISSIONS)))
    op.execute(role_permissions.delete().where(role_permissions.c.permission_id.in_(granted)))
    op.execute(permissions.delete().where(permissions.c.name.in_(list(PERMISSIONS))))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('deleting_at')
