"""Extension singletons, bound to an app later by ``create_app`` with ``init_app``."""
from flask_babel import Babel
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData

# Named constraints, so later migrations can alter them on SQLite and PostgreSQL alike.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING))
migrate = Migrate(render_as_batch=True)  # batch mode lets later migrations ALTER tables on SQLite
csrf = CSRFProtect()
babel = Babel()


def discard_session() -> None:
    """Roll back; on a connection that died with the database the rollback itself fails: drop the session."""
    try:
        db.session.rollback()
    except Exception:
        db.session.registry.clear()
