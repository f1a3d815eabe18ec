"""credential changes: the feed every worker follows to drop cached principals

Revision ID: auth_0005
Revises: auth_0004
Create Date: 2026-11-30 12:17:43.615186
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = 'auth_0005'
down_revision: str | None = 'auth_0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('credential_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credential_changes')),
    sqlite_autoincrement=True,
    )
    op.create_index(op.f('ix_credential_changes_created_at'), 'credential_changes', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_credential_changes_created_at'), table_name='credential_changes')
    op.drop_table('credential_changes')
