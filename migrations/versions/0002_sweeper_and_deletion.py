"""sweeper and deletion: when a recognition was last enqueued, how often it was re-enqueued, its delete token

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 16:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('recognition', schema=None) as batch_op:
        batch_op.add_column(sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('requeues', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('delete_token_hash', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_recognition_created_at'), ['created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('recognition', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recognition_created_at'))
        batch_op.drop_column('delete_token_hash')
        batch_op.drop_column('requeues')
        batch_op.drop_column('enqueued_at')
