"""trip albums, where a photo was taken (no coordinates stored), sign-outs that end every saved session

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 04:00:00

Only ADD/DROP COLUMN (see 0005): the album key is a column-level REFERENCES clause on SQLite.
The photo's GPS position is never stored in the database: the worker reads it from the uploaded
file (deleted with the photo) and keeps only the answer's distance and a coarse ``position``.
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'album',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('delete_token_hash', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_album')),
    )
    op.create_index(op.f('ix_album_created_at'), 'album', ['created_at'], unique=False)
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE recognition ADD COLUMN album_id VARCHAR(32) '
                   'REFERENCES album (id) ON DELETE CASCADE')
    else:
        op.add_column('recognition', sa.Column('album_id', sa.String(length=32), nullable=True))
        op.create_foreign_key(op.f('fk_recognition_album_id_album'), 'recognition', 'album',
                              ['album_id'], ['id'], ondelete='CASCADE')
    op.create_index(op.f('ix_recognition_album_id'), 'recognition', ['album_id'], unique=False)
    op.add_column('recognition', sa.Column('taken_at', sa.DateTime(), nullable=True))
    op.add_column('recognition', sa.Column('position', sa.String(length=16), nullable=True))
    op.add_column('recognition', sa.Column('distance_km', sa.Float(), nullable=True))
    op.add_column('user', sa.Column('session_version', sa.Integer(), nullable=False, server_default='0'))


def downgrade():
    op.execute('ALTER TABLE "user" DROP COLUMN session_version')
    for column in ('distance_km', 'position', 'taken_at'):
        op.execute(f'ALTER TABLE recognition DROP COLUMN {column}')
    op.drop_index(op.f('ix_recognition_album_id'), table_name='recognition')
    op.execute('ALTER TABLE recognition DROP COLUMN album_id')  # its foreign key goes with it
    op.drop_index(op.f('ix_album_created_at'), table_name='album')
    op.drop_table('album')
