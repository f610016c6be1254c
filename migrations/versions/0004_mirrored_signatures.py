"""few-shot signatures now average the photo and its mirror view: stored ones are recomputed

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 21:10:00

Signatures of the old, one-view format have the same length and model version as the new ones, so
nothing else tells them apart. Clearing them hands every reference photo back to the workers: the
sweeper (``webapp.maintenance.sweep``) re-sends the embedding task for photos without one.
"""
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("UPDATE reference_photo SET embedding = NULL, embedding_version = NULL, embedded_at = NULL "
               "WHERE embedding IS NOT NULL")


def downgrade():
    pass  # the cleared signatures are recomputed by the workers in either format's code
