"""The model version the workers should serve."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from flask import current_app

from ml.bundle import SHIPPED
from webapp.extensions import db
from webapp.models import ModelVersion

log = logging.getLogger(__name__)


def active_model() -> tuple[str | None, str]:
    """(version, source): the active ModelVersion row, else the configured (or shipped) bundle's."""
    version = db.session.scalar(db.select(ModelVersion.version)
                                .where(ModelVersion.is_active, ModelVersion.status == "ready"))
    if version:
        return version, "database"
    bundle = Path(current_app.config["MODEL_BUNDLE"] or SHIPPED)
    try:  # plain JSON: the web never loads an ML runtime
        return json.loads((bundle / "bundle.json").read_text())["version"], "bundle"
    except (OSError, ValueError, KeyError):
        log.warning("cannot read the model version from %s", bundle / "bundle.json")
        return None, "bundle"
