"""Applies the versioned SQL migrations in migrations/ (NNNN_name.sql), each exactly once.

    python3 migrate.py            apply what is pending
    python3 migrate.py --status   list applied and pending, change nothing

Each migration runs in its own transaction together with its row in schema_migrations, so a failing
migration leaves no trace; an advisory lock keeps two runs from racing. An applied migration whose file
changed since is an error. The last line of output is one JSON object for the deploy tool.
"""
import hashlib
import json
import os
import pathlib
import re
import sys

import psycopg2

MIGRATIONS = pathlib.Path(__file__).with_name("migrations")
LOCK_KEY = 727274  # pg_advisory_lock key shared by every migrate run


def migrations():
    found = []
    for path in sorted(MIGRATIONS.glob("*.sql")):
        match = re.match(r"^(\d+)_(.+)\.sql$", path.name)
        if not match:
            sys.exit(f"migrate: {path.name}: expected NNNN_name.sql")
        sql = path.read_text()
        found.append((match.group(1), match.group(2), sql, hashlib.sha256(sql.encode()).hexdigest()))
    return found


def main():
    status_only = "--status" in sys.argv[1:]
    url = os.environ.get("DATABASE_URL")
    if not url:
        sys.exit("migrate: DATABASE_URL is not set")
    conn = psycopg2.connect(url, connect_timeout=10)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    cur.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
             version text PRIMARY KEY,
             name text NOT NULL,
             checksum text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now())"""
    )
    cur.execute("SELECT version, checksum FROM schema_migrations")
    applied = dict(cur.fetchall())
    done, pending = [], []
    for version, name, sql, checksum in migrations():
        if version in applied:
            if applied[version] != checksum:
                print(json.dumps({"ok": False, "error": f"migration {version}_{name} changed after it was applied"}))
                sys.exit(f"migrate: {version}_{name}.sql changed after it was applied (checksum mismatch)")
            done.append(version)
        else:
            pending.append((version, name, sql, checksum))
    if status_only:
        print(json.dumps({"ok": True, "applied": done, "pending": [p[0] for p in pending]}))
        return
    newly = []
    for version, name, sql, checksum in pending:
        print(f"migrate: applying {version}_{name}", flush=True)
        conn.autocommit = False
        try:
            with conn.cursor() as tx:
                tx.execute(sql)
                tx.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (version, name, checksum),
                )
            conn.commit()
        except psycopg2.Error as error:
            conn.rollback()
            message = str(error).strip()
            print(f"migrate: {version}_{name} failed: {message}", file=sys.stderr, flush=True)
            print(json.dumps({"ok": False, "applied": newly, "failed": version, "error": message.splitlines()[0]}))
            sys.exit(1)
        finally:
            conn.autocommit = True
        newly.append(version)
    print(json.dumps({"ok": True, "applied": newly, "alreadyApplied": done}))


if __name__ == "__main__":
    main()
