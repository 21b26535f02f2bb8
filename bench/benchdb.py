"""The sibling database a benchmark works in, so it never touches the database of DATABASE_URL itself."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit, urlunsplit


def bench_url(url: str, suffix: str) -> str:
    """`.../cobalt` -> `.../cobalt_<suffix>` (a name that already says "bench" is kept)."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "cobalt"
    if "bench" not in name:
        name = f"{name}_{suffix}"
    return urlunsplit(parts._replace(path=f"/{name}"))


def ensure_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"  created database {name}", file=sys.stderr)


def setup_django(url: str, **environment: str) -> None:
    """Point Django at `url` (created if missing), set up and migrate."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "tracker.settings.base"
    os.environ["DATABASE_URL"] = url
    os.environ.update(environment)
    os.environ.setdefault("DEBUG", "False")
    ensure_database(url)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
