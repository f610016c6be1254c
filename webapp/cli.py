"""``flask landmarks import FILE``: load the catalog, idempotently (upsert by slug)."""
from __future__ import annotations

import json
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from webapp.extensions import db
from webapp.models import Landmark

FIELDS = ("class_key", "name_vi", "name_en", "province", "lat", "lon", "description_vi", "description_en")
REQUIRED = ("slug", "name_vi", "name_en", "lat", "lon")
landmarks_cli = AppGroup("landmarks", help="Manage the landmark catalog.")
ops_cli = AppGroup("ops", help="Operations: sweep stuck recognitions, purge old uploads.")


def upsert_landmarks(entries: list[dict]) -> tuple[int, int]:
    """Insert new slugs, update existing ones; returns (created, updated)."""
    existing = {lm.slug: lm for lm in db.session.scalars(db.select(Landmark))}
    created = updated = 0
    for entry in entries:
        values = {field: entry.get(field) for field in FIELDS}
        values["class_key"] = values["class_key"] or None
        landmark = existing.get(entry["slug"])
        if landmark is None:
            db.session.add(Landmark(slug=entry["slug"], **values))
            created += 1
        elif any(getattr(landmark, field) != value for field, value in values.items()):
            for field, value in values.items():
                setattr(landmark, field, value)
            updated += 1
    db.session.commit()
    return created, updated


@landmarks_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_command(file: Path) -> None:
    """Load landmarks from a JSON list (fields: slug, class_key, name_vi, name_en, ...)."""
    entries = json.loads(file.read_text(encoding="utf-8"))
    if isinstance(entries, dict):  # {"landmarks": [...]} is accepted too
        entries = entries["landmarks"]
    missing = [e.get("slug", "?") for e in entries if any(e.get(f) in (None, "") for f in REQUIRED)]
    if missing:
        raise click.ClickException(f"entries missing slug/names/coordinates: {', '.join(missing)}")
    created, updated = upsert_landmarks(entries)
    unchanged = len(entries) - created - updated
    click.echo(f"{len(entries)} landmarks: {created} created, {updated} updated, {unchanged} unchanged")


@ops_cli.command("sweep")
def sweep_command() -> None:
    """Re-enqueue recognitions stuck past RECOGNITION_TIMEOUT_S; fail those out of tries."""
    from webapp import maintenance

    result = maintenance.sweep()
    click.echo(f"{result['requeued']} re-enqueued, {result['failed']} failed after too many tries")


@ops_cli.command("purge")
def purge_command() -> None:
    """Delete uploads (photos and results) older than RETENTION_DAYS."""
    from webapp import maintenance

    result = maintenance.purge()
    click.echo(f"{result['deleted']} recognitions and {result['files']} stray files deleted")


def init_app(app: Flask) -> None:
    app.cli.add_command(landmarks_cli)
    app.cli.add_command(ops_cli)
