"""``flask landmarks import FILE``: load the catalog, idempotently (upsert by slug)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from flask_babel import force_locale

from webapp.editing import FIELDS, LandmarkInvalid, validate_landmark
from webapp.extensions import db
from webapp.models import Landmark

landmarks_cli = AppGroup("landmarks", help="Manage the landmark catalog.")
ops_cli = AppGroup("ops", help="Operations: sweep stuck recognitions, purge old uploads, stats.")
models_cli = AppGroup("models", help="Model versions: list, retrain, register a bundle, activate.")


class CatalogInvalid(ValueError):
    """Entries that break the editors' rules (``problems``: one line per entry); nothing was imported."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def upsert_landmarks(entries: list[dict]) -> tuple[int, int]:
    """Insert new slugs, update existing ones, all or nothing; returns (created, updated).

    Each entry is a whole landmark, checked by ``validate_landmark`` like the editors' form (an optional
    field left out becomes empty); CatalogInvalid names every bad entry and field.
    """
    existing = {lm.slug: lm for lm in db.session.scalars(db.select(Landmark))}
    problems, seen = [], set()
    created = updated = 0
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            problems.append(f"entry {number}: not a JSON object")
            continue
        slug = entry.get("slug") if isinstance(entry.get("slug"), str) else None  # else validation says why
        name = f"entry {number} ({slug})" if slug else f"entry {number}"
        if slug and slug in seen:
            problems.append(f"{name}: slug: appears more than once in the file")
            continue
        seen.add(slug)
        landmark = existing.get(slug)
        try:
            # every field given, so each is checked also when the slug exists; messages in the default
            # language (no request, no visitor's language to follow)
            with force_locale(current_app.config["BABEL_DEFAULT_LOCALE"]):
                values = validate_landmark({field: None for field in FIELDS} | entry, landmark)
        except LandmarkInvalid as err:
            problems.append(f"{name}: {err}")
            continue
        if landmark is None:
            db.session.add(Landmark(**values))
            created += 1
        elif any(getattr(landmark, field) != value for field, value in values.items()):
            for field, value in values.items():
                setattr(landmark, field, value)
            updated += 1
    if problems:
        db.session.rollback()
        raise CatalogInvalid(problems)
    db.session.commit()
    return created, updated


@landmarks_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_command(file: Path) -> None:
    """Load landmarks from a JSON list (fields: slug, class_key, name_vi, name_en, ...), all or nothing."""
    try:
        entries = json.loads(file.read_text(encoding="utf-8"))
    except ValueError as err:
        raise click.ClickException(f"{file} is not valid JSON: {err}") from None
    if isinstance(entries, dict):  # {"landmarks": [...]} is accepted too
        entries = entries.get("landmarks")
    if not isinstance(entries, list):
        raise click.ClickException(f"{file} must hold a list of landmarks")
    try:
        created, updated = upsert_landmarks(entries)
    except CatalogInvalid as err:
        raise click.ClickException(f"nothing imported; fix these entries:\n{err}") from None
    unchanged = len(entries) - created - updated
    click.echo(f"{len(entries)} landmarks: {created} created, {updated} updated, {unchanged} unchanged")


@ops_cli.command("sweep")
def sweep_command() -> None:
    """Re-enqueue recognitions stuck past RECOGNITION_TIMEOUT_S; fail those out of tries."""
    from webapp import maintenance

    result = maintenance.sweep()
    click.echo(f"{result['requeued']} re-enqueued, {result['failed']} failed after too many tries, "
               f"{result['reference_photos']} reference photos sent to be embedded again")


@ops_cli.command("purge")
def purge_command() -> None:
    """Delete uploads (photos and results) older than RETENTION_DAYS, then the albums left empty."""
    from webapp import maintenance

    result = maintenance.purge()
    click.echo(f"{result['deleted']} recognitions, {result['albums']} empty albums and {result['files']} stray files "
               "deleted")


@ops_cli.command("stats")
@click.option("--minutes", default=5, show_default=True, type=click.IntRange(1, 60), help="How far back to look.")
def stats_command(minutes: int) -> None:
    """Queue depth, live workers, throughput and latency of the last minutes (the /metrics numbers)."""
    from webapp.observability.report import stats_report

    click.echo(stats_report(minutes))


# --- flask models ---------------------------------------------------------------------------

@models_cli.command("list")
def models_list_command() -> None:
    """Every version (newest first) and the shipped model, with headline metrics; * marks the active one."""
    from webapp import model_versions

    def pct(value) -> str:
        return f"{value:.1%}" if isinstance(value, (int, float)) else "-"

    for v in model_versions.listing():
        m = v["metrics"]
        click.echo(f"{'*' if v['is_active'] else ' '} {str(v['id']):>8}  {v['status']:<8}  {v['arch'] or '-':<14}"
                   f"  top-1 {pct(m['top1']):>6}  top-5 {pct(m['top5']):>6}  {v['version'] or '-'}")


@models_cli.command("activate")
@click.argument("version_id")
def models_activate_command(version_id: str) -> None:
    """Serve version ID (a number), or "shipped" for the built-in model; reference photos are re-embedded."""
    from webapp import model_versions

    version = None
    if version_id != model_versions.SHIPPED_KEY:
        version = model_versions.get(int(version_id)) if version_id.isdigit() else None
        if version is None:
            raise click.ClickException(f"no model version {version_id} (give a number from `flask models list` "
                                       "or 'shipped')")
    try:
        model_versions.activate(version)
    except model_versions.ModelVersionError as err:
        raise click.ClickException(err.message) from None
    click.echo(f"active: {version.id if version else 'the shipped model'}")


@models_cli.command("register")
@click.argument("bundle_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--activate", "make_active", is_flag=True, help="Also make it the active version.")
def models_register_command(bundle_dir: Path, make_active: bool) -> None:
    """Record an existing bundle directory (bundle.json, labels.json, metrics.json) as a ready version."""
    from webapp import model_versions

    try:
        version = model_versions.register_bundle(bundle_dir, make_active=make_active)
    except model_versions.ModelVersionError as err:
        raise click.ClickException(err.message) from None
    click.echo(f"registered version {version.id}: {version.version}{' (active)' if version.is_active else ''}")


@models_cli.command("train")
def models_train_command() -> None:
    """Start a retraining on the training queue (like the page's Retrain button)."""
    from webapp import model_versions

    try:
        version = model_versions.start_training(None)
    except model_versions.ModelVersionError as err:
        raise click.ClickException(err.message) from None
    click.echo(f"training started: version {version.id}")


# --- flask users ----------------------------------------------------------------------------

users_cli = AppGroup("users", help="Editors and admins: create, disable, set passwords, issue and revoke API tokens.")


def find_user(email: str):
    from webapp.auth import normalise_email
    from webapp.models import User

    user = db.session.scalars(db.select(User).filter_by(email=normalise_email(email))).first()
    if user is None:
        raise click.ClickException(f"no user {email}")
    return user


@users_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(["editor", "admin"]), required=True, help="What the user may do.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="Asked for (hidden, twice) when left out.")
def users_create_command(email: str, role: str, password: str) -> None:
    """Create an editor or admin who signs in with EMAIL and the password."""
    from webapp.auth import create_user

    try:
        user = create_user(email, password, role)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"created {user.role} {user.email}")


@users_cli.command("token")
@click.argument("email")
@click.option("--name", default="", help="What the token is for, e.g. the script that uses it.")
def users_token_command(email: str, name: str) -> None:
    """Print a new API bearer token for EMAIL (shown once: only its hash is kept)."""
    from webapp.auth import issue_token

    user = find_user(email)
    if not user.active:
        raise click.ClickException(f"{user.email} is deactivated")
    click.echo(issue_token(user, name))


@users_cli.command("revoke")
@click.argument("email")
def users_revoke_command(email: str) -> None:
    """Revoke every API token of EMAIL."""
    from webapp.models import ApiToken, utcnow

    user = find_user(email)
    result: Any = db.session.execute(
        db.update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow()))
    revoked = result.rowcount  # a CursorResult: SQLAlchemy types execute() as the general Result
    db.session.commit()
    click.echo(f"{revoked} tokens of {user.email} revoked")


@users_cli.command("disable")
@click.argument("email")
def users_disable_command(email: str) -> None:
    """Disable EMAIL: their sessions and API tokens stop working and they cannot sign in."""
    from webapp.auth import set_active

    user = find_user(email)
    set_active(user, False)
    click.echo(f"{user.email} disabled")


@users_cli.command("enable")
@click.argument("email")
def users_enable_command(email: str) -> None:
    """Enable EMAIL again (they sign in anew; their old sessions stay ended)."""
    from webapp.auth import set_active

    user = find_user(email)
    set_active(user, True)
    click.echo(f"{user.email} enabled")


@users_cli.command("password")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="Asked for (hidden, twice) when left out.")
def users_password_command(email: str, password: str) -> None:
    """Set a new password for EMAIL; their saved sessions end."""
    from webapp.auth import set_password

    user = find_user(email)
    try:
        set_password(user, password)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"password of {user.email} changed")


@users_cli.command("list")
def users_list_command() -> None:
    """Every user with role, state, last sign-in and number of live tokens."""
    from sqlalchemy import func

    from webapp.models import ApiToken, User

    live = dict(db.session.execute(
        db.select(ApiToken.user_id, func.count(ApiToken.id)).where(ApiToken.revoked_at.is_(None))
        .group_by(ApiToken.user_id)
    ).all())
    for user in db.session.scalars(db.select(User).order_by(User.email)):
        last = user.last_login_at.strftime("%Y-%m-%d %H:%M") if user.last_login_at else "never"
        click.echo(f"{user.email:<40} {user.role:<7} {'active' if user.active else 'inactive':<9}"
                   f" last sign-in {last:<16}  {live.get(user.id, 0)} tokens")


def init_app(app: Flask) -> None:
    app.cli.add_command(landmarks_cli)
    app.cli.add_command(ops_cli)
    app.cli.add_command(models_cli)
    app.cli.add_command(users_cli)
