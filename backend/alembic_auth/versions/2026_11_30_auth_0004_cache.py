"""cache, and the login lockout moved into it

Revision ID: auth_0004
Revises: auth_0003
Create Date: 2026-11-30 10:56:34.985027
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = 'auth_0004'
down_revision: str | None = 'auth_0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('cache',
    sa.Column('key', sa.String(length=255).with_variant(mysql.VARBINARY(length=255), 'mysql'), nullable=False),
    sa.Column('value', sa.Text().with_variant(mysql.MEDIUMTEXT(collation='utf8mb4_bin'), 'mysql'), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_cache'))
    )
    with op.batch_alter_table('cache', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cache_expires_at'), ['expires_at'], unique=False)

    op.create_table('cache_locks',
    sa.Column('key', sa.String(length=255).with_variant(mysql.VARBINARY(length=255), 'mysql'), nullable=False),
    sa.Column('owner', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_cache_locks'))
    )
    with op.batch_alter_table('cache_locks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cache_locks_expires_at'), ['expires_at'], unique=False)

    # The lockout now counts in the cache; failures still in the window are forgotten.
    op.drop_table('login_failures')


def downgrade() -> None:
    op.create_table('login_failures',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('address', sa.String(length=45), nullable=False),
    sa.Column('failed_at', sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures'))
    )
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.create_index('ix_login_failures_address_failed_at', ['address', 'failed_at'], unique=False)
        batch_op.create_index('ix_login_failures_email_failed_at', ['email', 'failed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_failures_failed_at'), ['failed_at'], unique=False)

    with op.batch_alter_table('cache_locks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cache_locks_expires_at'))

    op.drop_table('cache_locks')
    with op.batch_alter_table('cache', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cache_expires_at'))

    op.drop_table('cache')
