"""notifications

Revision ID: auth_0008
Revises: auth_0007
Create Date: 2026-11-30 15:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from app.auth.permissions import RoleName, seed_statements, unseed_statements
from app.essentials.notifications.permissions import NotificationPermission

revision: str = 'auth_0008'
down_revision: str | None = 'auth_0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Sending an announcement to every active user is for admins.
PERMISSIONS = {
    NotificationPermission.ANNOUNCE: (
        "Send an announcement to every active user",
        [RoleName.ADMIN],
    ),
}


def upgrade() -> None:
    op.create_table('notifications',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notifications_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notifications_read_at'), ['read_at'], unique=False)
        batch_op.create_index('ix_notifications_user_id_created_at_id', ['user_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_notifications_user_id_read_at_created_at_id', ['user_id', 'read_at', 'created_at', 'id'], unique=False)

    for statement in seed_statements(PERMISSIONS):
        op.execute(statement)


def downgrade() -> None:
    for statement in unseed_statements(PERMISSIONS):
        op.execute(statement)
    # The indexes go with the table (MariaDB refuses to drop the one its foreign key uses).
    op.drop_table('notifications')
