"""landmarks and recognitions

Revision ID: 0001
Revises: 
Create Date: 2026-11-28 15:35:21.323691

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('landmark',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=80), nullable=False),
    sa.Column('class_key', sa.String(length=80), nullable=True),
    sa.Column('name_vi', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('province', sa.String(length=120), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('description_vi', sa.Text(), nullable=False),
    sa.Column('description_en', sa.Text(), nullable=False),
    sa.Column('search_text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_landmark')),
    sa.UniqueConstraint('class_key', name=op.f('uq_landmark_class_key')),
    sa.UniqueConstraint('slug', name=op.f('uq_landmark_slug'))
    )
    op.create_table('recognition',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('stored_name', sa.String(length=64), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('image_format', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('label', sa.String(length=80), nullable=True),
    sa.Column('landmark_id', sa.Integer(), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('top5', sa.JSON(), nullable=True),
    sa.Column('model_version', sa.String(length=80), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('decode_ms', sa.Float(), nullable=True),
    sa.Column('inference_ms', sa.Float(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['landmark_id'], ['landmark.id'], name=op.f('fk_recognition_landmark_id_landmark'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recognition'))
    )
    with op.batch_alter_table('recognition', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recognition_sha256'), ['sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_recognition_status'), ['status'], unique=False)



def downgrade():
    with op.batch_alter_table('recognition', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recognition_status'))
        batch_op.drop_index(batch_op.f('ix_recognition_sha256'))

    op.drop_table('recognition')
    op.drop_table('landmark')
