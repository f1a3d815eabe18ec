"""erasure and shop permissions

Revision ID: auth_0003
Revises: auth_0002
Create Date: 2026-11-22 02:41:25.328482
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from app.auth.permissions import RoleName, seed_statements, unseed_statements
from app.orders.permissions import OrderPermission
from app.products.permissions import ProductPermission

revision: str = 'auth_0003'
down_revision: str | None = 'auth_0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Permissions of the app database's shop, granted role by role.
PERMISSIONS = {
    ProductPermission.WRITE: ("Create, change and delete products", [RoleName.ADMIN]),
    OrderPermission.READ: ("Read one's own orders", [RoleName.ADMIN, RoleName.MEMBER]),
    OrderPermission.WRITE: ("Place and cancel one's own orders", [RoleName.ADMIN, RoleName.MEMBER]),
}


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deleting_at', sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=True))

    for statement in seed_statements(PERMISSIONS):
        op.execute(statement)


def downgrade() -> None:
    for statement in unseed_statements(PERMISSIONS):
        op.execute(statement)
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('deleting_at')
