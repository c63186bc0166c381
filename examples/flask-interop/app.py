"""The Flask half of the latch Flask-interop example: sign-in lives in Flask,
and the Rust app (crates/latch-flask/examples/flask_interop.rs) sees it.

    FLASK_SECRET_KEY=... flask --app app run --port 5000

SESSION_BACKEND=redis switches to Flask-Session's Redis sessions (REDIS_URL,
default redis://127.0.0.1:6379/); both apps must use the same backend.
"""

import os
from datetime import timedelta

from flask import Flask, redirect, request, session
from markupsafe import escape

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ["FLASK_SECRET_KEY"],
    # The same lifetime as the Rust app's (latch_flask::DEFAULT_MAX_AGE).
    PERMANENT_SESSION_LIFETIME=timedelta(days=31),
    SESSION_COOKIE_NAME="session",
    SESSION_COOKIE_SAMESITE="Lax",
    # latch sends Secure cookies; so must Flask (except for plain-http dev).
    SESSION_COOKIE_SECURE=os.environ.get("INSECURE_DEV_COOKIES") != "1",
)

if os.environ.get("SESSION_BACKEND") == "redis":
    from flask_session import Session
    from redis import Redis

    app.config.update(
        SESSION_TYPE="redis",
        SESSION_REDIS=Redis.from_url(
            os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/")
        ),
    )
    Session(app)


@app.get("/")
def home():
    # `_user_id` is Flask-Login's key; latch maps it to Session::user_id.
    user = session.get("_user_id")
    who = (
        f"Signed in as <b>{escape(user)}</b>."
        if user
        else 'Not signed in. <a href="/login">Sign in</a>.'
    )
    visits = session.get("rust_visits", 0)
    return (
        f"<h1>Flask</h1><p>{who}</p><p>Rust pages seen in this session: {visits}</p>"
        '<p><a href="/rust/">Rust pages</a></p>'
        '<form method=post action=/logout><button>Sign out (in Flask)</button></form>'
    )


@app.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "POST":
        session.clear()
        session["_user_id"] = request.form["name"]
        session.permanent = True  # latch: remember = true
        return redirect("/")
    return '<form method=post><input name=name placeholder=name><button>Sign in</button></form>'


@app.post("/logout")
def logout():
    session.clear()
    return redirect("/")
