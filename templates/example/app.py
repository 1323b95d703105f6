"""{{project}}: the sample platform opskit runs (written by `opskit init --example`).

A Flask API served by gunicorn, with PostgreSQL. /health checks the database with a query and the
schema version against the migrations this image carries: an API that finds an older schema than its
own code expects reports itself unhealthy, so it never serves against the wrong schema.
"""
import contextlib
import os
import pathlib
import re

import psycopg2
import psycopg2.extras
import psycopg2.pool
from flask import Flask, jsonify, request

VERSION = os.environ.get("APP_VERSION", "dev")
COLOR = os.environ.get("APP_COLOR", "default")
DATABASE_URL = os.environ.get("DATABASE_URL", "")
MIGRATIONS = pathlib.Path(__file__).with_name("migrations")


def expected_schema_version():
    versions = [m.group(1) for p in MIGRATIONS.glob("*.sql") if (m := re.match(r"^(\d+)_", p.name))]
    return max(versions) if versions else None


EXPECTED_SCHEMA = expected_schema_version()
app = Flask(__name__)


_pool = None
_pool_pid = None


def _connections():
    # One connection kept per gunicorn worker (a sync worker serves one request at a time; workers fork
    # after import, hence the pid): a new PostgreSQL connection per request, with SCRAM authentication,
    # costs several times the request itself (measured in the container: /health 20 ms -> 2.4 ms).
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():
        _pool = psycopg2.pool.SimpleConnectionPool(1, 2, DATABASE_URL, connect_timeout=3)
        _pool_pid = os.getpid()
    return _pool


@contextlib.contextmanager
def connect():
    pool = _connections()
    conn = pool.getconn()
    broken = False
    try:
        with conn:  # commits on success, rolls back on error
            yield conn
    except (psycopg2.OperationalError, psycopg2.InterfaceError):
        broken = True  # the server went away (restart, failover): never hand this one out again
        raise
    finally:
        pool.putconn(conn, close=broken or bool(conn.closed))


@app.after_request
def identify(response):
    # Lets nginx-side checks (and cutover's verification) see which version and colour answered.
    response.headers["X-App-Version"] = VERSION
    response.headers["X-App-Color"] = COLOR
    return response


@app.get("/health")
def health():
    body = {"status": "ok", "version": VERSION, "color": COLOR, "expectedSchema": EXPECTED_SCHEMA}
    try:
        with connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.execute("SELECT to_regclass('public.schema_migrations') IS NOT NULL")
            has_table = cur.fetchone()[0]
            schema = None
            if has_table:
                cur.execute("SELECT max(version) FROM schema_migrations")
                schema = cur.fetchone()[0]
        body["database"] = "ok"
        body["schema"] = schema
        if EXPECTED_SCHEMA is not None and (schema is None or schema < EXPECTED_SCHEMA):
            body["status"] = "error"
            body["error"] = f"database schema {schema} is older than this version expects ({EXPECTED_SCHEMA}): run the migrations"
            return jsonify(body), 503
        return jsonify(body)
    except psycopg2.Error as error:
        body.update(status="error", database="unreachable", error=str(error).strip().splitlines()[0])
        return jsonify(body), 503


@app.get("/ping")
def ping():
    # No database: the cheapest answer through the whole chain (load tests of nginx and the switch).
    return jsonify({"pong": True, "color": COLOR, "version": VERSION})


@app.get("/api/items")
def list_items():
    with connect() as conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute("SELECT id, name, created_at FROM items ORDER BY id DESC LIMIT 100")
        rows = cur.fetchall()
    return jsonify([{**row, "created_at": row["created_at"].isoformat()} for row in rows])


@app.post("/api/items")
def create_item():
    payload = request.get_json(silent=True) or {}
    name = payload.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        return jsonify({"error": "name: expected a non-empty string of at most 200 characters"}), 400
    with connect() as conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute("INSERT INTO items (name) VALUES (%s) RETURNING id, name, created_at", (name.strip(),))
        row = cur.fetchone()
    return jsonify({**row, "created_at": row["created_at"].isoformat()}), 201


@app.get("/api/items/<int:item_id>")
def get_item(item_id):
    with connect() as conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute("SELECT id, name, created_at FROM items WHERE id = %s", (item_id,))
        row = cur.fetchone()
    if row is None:
        return jsonify({"error": f"item {item_id} not found"}), 404
    return jsonify({**row, "created_at": row["created_at"].isoformat()})
