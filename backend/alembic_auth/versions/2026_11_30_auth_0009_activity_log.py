"""activity log: who changed what, old and new values; and who may read it

Revision ID: auth_0009
Revises: auth_0008
Create Date: 2026-11-30 15:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from app.auth.permissions import RoleName, seed_statements, unseed_statements
from app.essentials.activity.permissions import ActivityPermission

revision: str = 'auth_0009'
down_revision: str | None = 'auth_0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Everyone's activity (GET /api/v1/activity) is for admins; one's own needs no permission.
PERMISSIONS = {
    ActivityPermission.READ: ("Read everyone's activity log", [RoleName.ADMIN]),
}


def upgrade() -> None:
    op.create_table('activity_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('log_name', sa.String(length=64), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('subject_type', sa.String(length=64), nullable=True),
    sa.Column('subject_id', sa.BigInteger(), nullable=True),
    sa.Column('causer_id', sa.BigInteger(), nullable=True),
    sa.Column('properties', sa.Text(), nullable=False),
    sa.Column('request_id', sa.String(length=128), nullable=True),
    sa.Column('batch_uuid', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity_log')),
    sa.UniqueConstraint('uuid', name=op.f('uq_activity_log_uuid'))
    )
    op.create_index('ix_activity_log_subject_type_subject_id_id', 'activity_log', ['subject_type', 'subject_id', 'id'], unique=False)
    op.create_index('ix_activity_log_causer_id_id', 'activity_log', ['causer_id', 'id'], unique=False)
    op.create_index(op.f('ix_activity_log_created_at'), 'activity_log', ['created_at'], unique=False)

    for statement in seed_statements(PERMISSIONS):
        op.execute(statement)


def downgrade() -> None:
    for statement in unseed_statements(PERMISSIONS):
        op.execute(statement)
    op.drop_index(op.f('ix_activity_log_created_at'), table_name='activity_log')
    op.drop_index('ix_activity_log_causer_id_id', table_name='activity_log')
    op.drop_index('ix_activity_log_subject_type_subject_id_id', table_name='activity_log')
    op.drop_table('activity_log')
