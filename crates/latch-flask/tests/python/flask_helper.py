"""Make and read Flask sessions with the real Flask and Flask-Session, for the
latch-flask tests.

Usage: python flask_helper.py COMMAND < request.json > response.json

Values travel as Flask's tagged JSON (so tuples, bytes, Markup, UUIDs and
datetimes cross intact) and are turned into Python objects by Flask's own
TaggedJSONSerializer. Every request goes through a real Flask app and its
session interface, via Flask's test client; the signing time is fixed by
patching itsdangerous' TimestampSigner.get_timestamp, so output is
deterministic.

Commands (request fields; response fields):
  make-cookie         secret_key, fallbacks, now, data, [lifetime]; cookie
  read-cookie         secret_key, fallbacks, now, lifetime, cookie; data, repr
  sign-cookie         secret_key, salt, now, data; cookie  (itsdangerous directly,
                      for wrong-salt tests)
  make-redis-session  redis_url, prefix, secret_key, use_signer, format,
                      lifetime, data; cookie
  read-redis-session  same as make, with cookie instead of data; data, repr
  write-pickle-entry  redis_url, key, data; (nothing)
"""

import json
import pickle
import sys
import warnings
from datetime import timedelta

import itsdangerous.timed
from flask import Flask, session
from flask.json.tag import TaggedJSONSerializer

TAGGED = TaggedJSONSerializer()
COOKIE = "session"


def fix_time(now):
    itsdangerous.timed.TimestampSigner.get_timestamp = lambda self: int(now)


def from_tagged(data):
    return TAGGED.loads(json.dumps(data))


def to_tagged(value):
    return json.loads(TAGGED.dumps(value))


def described(d):
    """The session as tagged JSON plus each value's Python repr, so the tests
    can check real Python types, not only their JSON."""
    d = dict(d)
    return {"data": to_tagged(d), "repr": {k: repr(v) for k, v in d.items()}}


def base_app(req):
    app = Flask("latch_flask_helper")
    app.secret_key = req["secret_key"]
    app.config["SECRET_KEY_FALLBACKS"] = req.get("fallbacks", [])
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(
        seconds=req.get("lifetime", 31 * 24 * 3600)
    )
    return app


def add_routes(app, data):
    @app.route("/set")
    def set_session():
        session.update(data)
        return ""

    @app.route("/get")
    def get_session():
        return described(session)


def cookie_from(response):
    for header in response.headers.getlist("Set-Cookie"):
        name, _, rest = header.partition("=")
        if name == COOKIE:
            return rest.split(";", 1)[0]
    raise SystemExit("Flask set no session cookie")


def make(app):
    with app.test_client() as client:
        return {"cookie": cookie_from(client.get("/set"))}


def read(app, cookie):
    with app.test_client() as client:
        client.set_cookie(COOKIE, cookie)
        return client.get("/get").get_json()


def make_cookie(req):
    fix_time(req["now"])
    app = base_app(req)
    add_routes(app, from_tagged(req["data"]))
    return make(app)


def read_cookie(req):
    fix_time(req["now"])
    app = base_app(req)
    add_routes(app, {})
    return read(app, req["cookie"])


def sign_cookie(req):
    fix_time(req["now"])
    from flask.sessions import session_json_serializer
    from itsdangerous import URLSafeTimedSerializer

    s = URLSafeTimedSerializer(
        req["secret_key"],
        salt=req["salt"],
        serializer=session_json_serializer,
        signer_kwargs={"key_derivation": "hmac", "digest_method": "sha1"},
    )
    return {"cookie": s.dumps(from_tagged(req["data"]))}


def redis_app(req):
    from flask_session import Session
    from redis import Redis

    app = base_app(req)
    app.config.update(
        SESSION_TYPE="redis",
        SESSION_REDIS=Redis.from_url(req["redis_url"]),
        SESSION_KEY_PREFIX=req["prefix"],
        SESSION_USE_SIGNER=req["use_signer"],
        SESSION_SERIALIZATION_FORMAT=req["format"],
    )
    Session(app)
    return app


def make_redis_session(req):
    app = redis_app(req)
    add_routes(app, from_tagged(req["data"]))
    return make(app)


def read_redis_session(req):
    app = redis_app(req)
    add_routes(app, {})
    return read(app, req["cookie"])


def write_pickle_entry(req):
    from redis import Redis

    Redis.from_url(req["redis_url"]).set(
        req["key"], pickle.dumps(from_tagged(req["data"])), ex=600
    )
    return {}


COMMANDS = {
    "make-cookie": make_cookie,
    "read-cookie": read_cookie,
    "sign-cookie": sign_cookie,
    "make-redis-session": make_redis_session,
    "read-redis-session": read_redis_session,
    "write-pickle-entry": write_pickle_entry,
}


def main():
    warnings.simplefilter("ignore")  # Flask-Session's use_signer deprecation
    request = json.load(sys.stdin)
    json.dump(COMMANDS[sys.argv[1]](request), sys.stdout)


if __name__ == "__main__":
    main()
