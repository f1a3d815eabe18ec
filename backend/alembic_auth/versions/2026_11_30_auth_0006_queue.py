"""queue: jobs, failed jobs, batches, workers; outbox receipts

Revision ID: auth_0006
Revises: auth_0005
Create Date: 2026-11-30 11:00:26.284318
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from app.auth.permissions import RoleName, seed_statements, unseed_statements
from app.essentials.queue.permissions import QueuePermission

revision: str = 'auth_0006'
down_revision: str | None = 'auth_0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Looking after the queue (the /admin/queue page and /api/v1/queue) is for admins.
PERMISSIONS = {
    QueuePermission.ADMIN: ("See the queue, retry and forget failed jobs", [RoleName.ADMIN]),
}


def upgrade() -> None:
    op.create_table('failed_jobs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('queue', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('exception', sa.Text(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('backoff', sa.String(length=255), nullable=False),
    sa.Column('timeout', sa.Float(), nullable=True),
    sa.Column('batch_id', sa.BigInteger(), nullable=True),
    sa.Column('failed_at', sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_failed_jobs')),
    sa.UniqueConstraint('uuid', name=op.f('uq_failed_jobs_uuid'))
    )
    with op.batch_alter_table('failed_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_failed_jobs_failed_at'), ['failed_at'], unique=False)

    op.create_table('job_batches',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('total_jobs', sa.Integer(), nullable=False),
    sa.Column('pending_jobs', sa.Integer(), nullable=False),
    sa.Column('failed_jobs', sa.Integer(), nullable=False),
    sa.Column('then_job', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_batches'))
    )
    op.create_table('jobs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('queue', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('backoff', sa.String(length=255), nullable=False),
    sa.Column('timeout', sa.Float(), nullable=True),
    sa.Column('batch_id', sa.BigInteger(), nullable=True),
    sa.Column('available_at', sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('worker_id', sa.BigInteger(), nullable=True),
    sa.Column('reserved_at', sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs'))
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index('ix_jobs_worker_id_queue_available_at_id', ['worker_id', 'queue', 'available_at', 'id'], unique=False)

    op.create_table('outbox_receipts',
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.PrimaryKeyConstraint('uuid', name=op.f('pk_outbox_receipts'))
    )
    with op.batch_alter_table('outbox_receipts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_receipts_received_at'), ['received_at'], unique=False)

    op.create_table('queue_workers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('queues', sa.String(length=255), nullable=False),
    sa.Column('concurrency', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_queue_workers'))
    )
    with op.batch_alter_table('queue_workers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_queue_workers_heartbeat_at'), ['heartbeat_at'], unique=False)

    for statement in seed_statements(PERMISSIONS):
        op.execute(statement)


def downgrade() -> None:
    for statement in unseed_statements(PERMISSIONS):
        op.execute(statement)
    with op.batch_alter_table('queue_workers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_queue_workers_heartbeat_at'))

    op.drop_table('queue_workers')
    with op.batch_alter_table('outbox_receipts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_receipts_received_at'))

    op.drop_table('outbox_receipts')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_worker_id_queue_available_at_id')

    op.drop_table('jobs')
    op.drop_table('job_batches')
    with op.batch_alter_table('failed_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_failed_jobs_failed_at'))

    op.drop_table('failed_jobs')
