"""Connection handling: a real server from ``DATABASE_URL`` or an embedded PostgreSQL with pgvector.

The embedded server (:mod:`jdgraph.catalog.embedded`) keeps its data in ``$JDGRAPH_HOME/pgdata``; every process
that uses it registers itself, the first one starts it and the last one to exit stops it, under an inter-process
lock, so two processes starting at once share one server.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from jdgraph.errors import ConfigError, DatabaseError, DatabaseLockTimeoutError, DatabaseUnreachableError
from jdgraph.settings import DatabaseSettings, jdgraph_home

log = logging.getLogger(__name__)

# The password of a URL runs from the user's ":" to the LAST "@": a password with an unencoded "@" or "/" must not
# leave its tail in the output ("bob:p@ss/w0rd@db" → "bob:***@db"). Without "://", a "user:pw@host" string too.
_URL_PASSWORD = re.compile(r"^(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*):(?P<pw>.*)@(?P<rest>[^@]*)$", re.I | re.S)
_BARE_PASSWORD = re.compile(r"^(?P<head>[^:/@\s=]*):(?P<pw>.*)@(?P<rest>[^@]*)$", re.S)
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)


def redact_url(url: str) -> str:
    """The URL or key-value DSN with any password replaced by ``***``."""
    pattern = _URL_PASSWORD if "://" in url else _BARE_PASSWORD
    url = pattern.sub(lambda m: f"{m.group('head')}:***@{m.group('rest')}" if m.group("pw") else m.group(0), url)
    return _KV_PASSWORD.sub(r"\1***", url)


def checked_url(url: str) -> str:
    """``DATABASE_URL`` as given, once it parses as a PostgreSQL URL or key-value DSN; else a ConfigError whose
    message never holds the password (psycopg's own error can name part of it as a host)."""
    authority = url.split("://", 1)[1].split("?", 1)[0] if "://" in url else ""
    if authority.count("@") > 1:
        raise ConfigError(
            f"DATABASE_URL {redact_url(url)} has an '@' or '/' in its password: percent-encode it (%40, %2F)",
            setting="DATABASE_URL",
        )
    try:
        psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        password = _password_of(url)
        if password:
            reason = reason.replace(password, "***")
        raise ConfigError(
            f"DATABASE_URL {redact_url(url)} is not a valid PostgreSQL URL or key-value DSN: {reason}",
            setting="DATABASE_URL",
        ) from None
    return url


def _describe_target(url: str) -> str:
    """host:port/dbname of a conninfo, for error messages (never the password)."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return redact_url(url)
    host = info.get("host") or "localhost"
    port = info.get("port") or "5432"
    return f"{host}:{port}/{info.get('dbname') or info.get('user') or ''}"


def _password_of(url: str) -> str | None:
    """The password of a conninfo, to scrub from error messages; of one that does not parse, what
    :func:`redact_url` would hide."""
    try:
        pw = psycopg.conninfo.conninfo_to_dict(url).get("password")
    except psycopg.ProgrammingError:
        m = (_URL_PASSWORD if "://" in url else _BARE_PASSWORD).match(url) or _KV_PASSWORD.search(url)
        pw = (m.group("pw") if "pw" in m.groupdict() else m.group(2)).strip("'") if m else None
    return str(pw) if pw else None


def start_embedded_server(home: Path | None = None) -> str:
    """Start (or join) the embedded PostgreSQL in ``home`` (``$JDGRAPH_HOME``) and return its connection string."""
    # deferred: only a database without DATABASE_URL needs the embedded server (pgserver, psutil, filelock)
    from jdgraph.catalog.embedded import start_embedded_server as start

    return start(home or jdgraph_home())


HNSW_EF_SEARCH = 100
"""Candidates an HNSW scan keeps (pgvector's default is 40): set once per pooled connection, not per query, so a
lookup costs no extra round trip; recall on the 10^5 aliases of ESCO needs more than the default."""


SKILL_EF_SEARCH = 200
"""The wider scan for skill neighbours: ESCO's alt labels crowd a skill's neighbourhood with near-duplicates of
one concept, and at 100 the sentence suites lost 2 points of RP@5 against ef_search 200 (400 gained nothing)."""


TERM_EF_SEARCH = 100
"""The scan for a short term's nearest skill aliases (a JD's phrases that no alias names): on 400 spans of SkillSpan's
TRAINING postings against ESCO its best skill equalled the exact search's for 96.5% of them, against 97.0% at
``SKILL_EF_SEARCH``, at 2.3 instead of 4.0 ms a term (about 50 terms a JD)."""


def advisory_key(purpose: str, schema: str) -> int:
    """The key of a transaction-scoped advisory lock for ``purpose`` on one catalog schema: catalogs live in
    schemas of their own, so an import into one never waits for a write to another (a database-wide key made
    re-embedding the starter catalog wait two minutes for an ESCO import into another schema)."""
    return int.from_bytes(hashlib.sha256(f"jdgraph-{purpose}:{schema}".encode()).digest()[:8], "big", signed=True)


def _configure(conn: psycopg.Connection[Any]) -> None:
    register_vector(conn)
    with conn.transaction():
        conn.execute(f"SET hnsw.ef_search = {HNSW_EF_SEARCH}")


@dataclass
class ServerInfo:
    url: str
    """Connection URL, password removed."""
    embedded: bool
    version: str


CHECKPOINT_POOL_MAX = 4
"""Connections the checkpointer's own pool (``catalog/checkpoints.py``) may open per process, beside the catalog's
``JDGRAPH_DB_POOL_MAX``: a plan of many processes (Ray actors, server workers) counts both."""


def check_connection_budget(processes: int, pool_size: int, allowed: int, in_use: int, *, what: str) -> None:
    """Refuse a plan of ``processes`` processes, each with a catalog pool of ``pool_size`` connections and the
    checkpointer's pool, that the server cannot hold (both numbers in the message): Ray actors, server workers."""
    each = pool_size + CHECKPOINT_POOL_MAX
    free = allowed - in_use
    if processes * each > free:
        raise ConfigError(
            f"{processes} {what} × (a pool of {pool_size} + {CHECKPOINT_POOL_MAX} for checkpoints) = "
            f"{processes * each} connections, but the server allows {allowed} and {in_use} are in use ({free} "
            f"free): lower the {what} or the pool size, or put PgBouncer (transaction mode) in front of the server",
            setting=what,
        )


class Database:
    """A connection pool on the catalog schema, with pgvector registered on every connection."""

    def __init__(self, settings: DatabaseSettings | None = None, *, lock_timeout_s: float | None = None) -> None:
        """``lock_timeout_s``: a statement that waits longer for a lock fails (DatabaseLockTimeoutError) rather
        than hang, for readers that must answer while an import holds a table (``db status``)."""
        self.settings = settings or DatabaseSettings.from_env()
        self.lock_timeout_s = lock_timeout_s
        self.embedded = self.settings.url is None
        self._url: str | None = None
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()

    @property
    def schema(self) -> str:
        return self.settings.schema

    @property
    def url(self) -> str:
        if self._url is None:
            self._url = start_embedded_server() if self.embedded else checked_url(str(self.settings.url))
        return self._url

    @property
    def display_url(self) -> str:
        return redact_url(self.url)

    def _connect_kwargs(self) -> dict[str, Any]:
        # force_custom_plan: psycopg prepares a statement on its fifth execution, and after five more PostgreSQL
        # may switch a prepared statement to its generic plan, which cannot see the LIMIT or the size of the vector
        # array: the batched skill-neighbour search (an HNSW scan per vector) then ran 3-4x slower from the tenth JD
        # a process classified on (15.7 against 4.5 ms per term, ESCO). Planning our statements is cheap; keep
        # the custom plan.
        options = f"-c search_path={self.schema},public -c plan_cache_mode=force_custom_plan"
        if self.lock_timeout_s is not None:
            options += f" -c lock_timeout={int(self.lock_timeout_s * 1000)}"
        return {"options": options, "connect_timeout": 10}

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection[dict[str, Any]]:
        """A new connection outside the pool (for migrations and bootstrap). Raises a clear error if unreachable."""
        try:
            return psycopg.connect(self.url, autocommit=autocommit, row_factory=dict_row, **self._connect_kwargs())
        except psycopg.OperationalError as exc:
            target = _describe_target(self.url)
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            password = _password_of(self.url)
            if password:
                reason = reason.replace(password, "***")
            raise DatabaseUnreachableError(
                f"cannot connect to PostgreSQL at {target}: {reason}", target=target
            ) from exc

    def bootstrap(self) -> None:
        """Create the pgvector extension and the schema (idempotent), so pooled connections can register vector."""
        with self.connect(autocommit=True) as conn:
            try:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public")
            except psycopg.errors.UniqueViolation:
                pass  # a concurrent process created it between our check and our insert
            except psycopg.Error as exc:
                raise DatabaseError(
                    f"the pgvector extension is not available on {_describe_target(self.url)}: {exc}"
                ) from exc
            with suppress(psycopg.errors.UniqueViolation):
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')

    @property
    def pool(self) -> ConnectionPool:
        with self._lock:
            if self._pool is None:
                self.bootstrap()
                pool = ConnectionPool(
                    self.url,
                    min_size=self.settings.pool_min,
                    max_size=self.settings.pool_max,
                    # Autocommit: a read costs no COMMIT round trip when its connection goes back to the pool
                    # (a role search makes several); every write opens its transaction explicitly.
                    kwargs={"row_factory": dict_row, "autocommit": True, **self._connect_kwargs()},
                    configure=_configure,
                    open=False,
                    name=f"jdgraph-{self.schema}",
                )
                pool.open(wait=True, timeout=30)
                self._pool = pool
            return self._pool

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """A pooled connection in autocommit mode: each statement commits on its own; a block that must be atomic
        uses ``conn.transaction()``."""
        try:
            with self.pool.connection() as conn:
                yield conn  # type: ignore[misc]  # the pool's connections are made with row_factory=dict_row
        except PoolTimeout as exc:
            raise DatabaseError(
                f"no database connection came free in time (pool of {self.settings.pool_max}, "
                "JDGRAPH_DB_POOL_MAX); nothing was written by this operation"
            ) from exc
        except psycopg.errors.LockNotAvailable as exc:
            raise DatabaseLockTimeoutError(
                f"a table stayed locked by another transaction for over {self.lock_timeout_s or 0:g} s (an import "
                "rebuilding its index); nothing was written"
            ) from exc
        except psycopg.OperationalError as exc:
            # A connection dropped mid-operation (server restarted, killed backend, network) or the server out of
            # resources (disk full, SQLSTATE 53100): the open transaction was rolled back, so nothing of it is saved;
            # the caller may retry or resume.
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise DatabaseError(
                f"the database failed during the operation ({reason}); its transaction was rolled back, nothing of "
                "it was saved"
            ) from exc

    def server_info(self) -> ServerInfo:
        with self.connection() as conn:
            row = conn.execute("SHOW server_version").fetchone()
        assert row is not None
        return ServerInfo(url=self.display_url, embedded=self.embedded, version=str(row["server_version"]))

    def connection_budget(self) -> tuple[int, int]:
        """(connections the server allows ordinary users, connections open now): what a job that opens many
        pools (Ray actors, server workers) must fit in."""
        with self.connection() as conn:
            row = conn.execute(
                """SELECT current_setting('max_connections')::int
                          - current_setting('superuser_reserved_connections')::int AS allowed,
                          (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS used"""
            ).fetchone()
        assert row is not None
        return int(row["allowed"]), int(row["used"])

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def drop_schema(self, *, including_prefixed: bool = False) -> None:
        """Drop the whole catalog schema (tests use one schema per run), and with ``including_prefixed`` the
        schemas of the other catalogs named after it (``<schema>_<name>``)."""
        self.close()
        with self.connect(autocommit=True) as conn:
            names = [self.schema]
            if including_prefixed:
                rows = conn.execute(
                    "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (self.schema + "_",)
                ).fetchall()
                names += [r["nspname"] for r in rows]
            for name in names:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
