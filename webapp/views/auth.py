"""Signing editors and admins in and out (Flask-Login sessions; visitors need no account)."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from webapp.auth import authenticate, end_sessions
from webapp.extensions import db
from webapp.models import utcnow
from webapp.security import safe_next

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    email = StringField(_l("Email"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])
    next = HiddenField()


def after_login_url() -> str:
    return url_for("editor.landmarks")


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
        if current_user.is_authenticated:
            return redirect(safe_next(form.next.data) or after_login_url())
    error = None
    if form.validate_on_submit():
        user = authenticate(form.email.data, form.password.data)
        if user is not None:
            login_user(user)
            user.last_login_at = utcnow()
            db.session.commit()
            return redirect(safe_next(form.next.data) or after_login_url(), code=303)
        error = _("Wrong email or password.")  # the same for an unknown email: who has an account stays private
    status = 401 if error else 200
    return render_template("auth/login.html", form=form, error=error), status


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        end_sessions(current_user)  # a saved copy of the cookie stops working too
    logout_user()
    return redirect(url_for("pages.index"), code=303)
