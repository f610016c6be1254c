"""Celery worker: ``celery -A worker worker -Q inference,inference-album --concurrency 1``.

``-A worker`` asks this package for ``app``; it is built on first access (in
``worker.main``) so that importing ``worker.tasks`` alone creates no Flask app.
"""


def __getattr__(name: str):
    if name == "app":
        from worker.main import celery_app

        return celery_app
    raise AttributeError(f"module 'worker' has no attribute {name!r}")
