"""The worker's Flask app and Celery app, built from the environment like the web's."""
from webapp import create_app
from worker import model, tasks  # noqa: F401  (registers the tasks and the model loader)
from worker import heartbeat, logging_setup  # noqa: F401  (heartbeat rows; log format, recognition ids)

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
