"""answer tiers (sure / maybe / unknown), places that look like this, a photo per landmark

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 09:30:00

Only ADD/DROP COLUMN, never batch mode's table copy: on SQLite (foreign keys on) dropping the original
``landmark`` table would delete every reference photo (ON DELETE CASCADE). SQLite adds a column with its
REFERENCES clause in place, and drops one (3.35+) the same way. SQLAlchemy does not reflect the name and
ON DELETE of such a column-level foreign key on SQLite (``flask db migrate`` there proposes to recreate
it: leave that out); tests/webapp/test_migrations.py checks it with PRAGMA foreign_key_list instead.
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('recognition', sa.Column('tier', sa.String(length=16), nullable=True))
    op.add_column('recognition', sa.Column('suggestions', sa.JSON(), nullable=True))
    op.add_column('recognition', sa.Column('places', sa.JSON(), nullable=True))
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE landmark ADD COLUMN cover_photo_id INTEGER '
                   'REFERENCES reference_photo (id) ON DELETE SET NULL')
    else:
        op.add_column('landmark', sa.Column('cover_photo_id', sa.Integer(), nullable=True))
        op.create_foreign_key(op.f('fk_landmark_cover_photo_id_reference_photo'), 'landmark', 'reference_photo',
                              ['cover_photo_id'], ['id'], ondelete='SET NULL')


def downgrade():
    op.execute('ALTER TABLE landmark DROP COLUMN cover_photo_id')  # its foreign key goes with it
    for column in ('places', 'suggestions', 'tier'):
        op.execute(f'ALTER TABLE recognition DROP COLUMN {column}')
