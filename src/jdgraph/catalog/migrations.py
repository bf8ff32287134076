"""Numbered SQL migrations with a version table.

The list is append-only: ``NNNN_name.sql`` files shipped as package data, applied in order, each in its own
transaction, under an advisory lock so concurrent processes never race. A migration's checksum is recorded;
an applied migration whose file changed is an error (never edit an applied one: add a new file).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg

from jdgraph.catalog.db import Database, advisory_key
from jdgraph.errors import EmbeddingMismatchError, MigrationError

_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
EMBEDDING_DIM_PLACEHOLDER = "{{EMBEDDING_DIM}}"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]


def load_migrations() -> list[Migration]:
    folder = resources.files("jdgraph.catalog") / "migrations"
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _FILE_RE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"migration numbers must be 1..N without gaps, got {versions}")
    return found


@dataclass
class MigrationReport:
    applied: list[str]
    version: int


def _ensure_version_table(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
               version    integer PRIMARY KEY,
               name       text NOT NULL,
               checksum   text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())"""
    )


def migrate(db: Database, *, embedding_model: str, embedding_dim: int, check_model: bool = True) -> MigrationReport:
    """Apply pending migrations and record/check the catalog's embedding model (``check_model=False``: only record
    it where none is, for :meth:`CatalogWriter.reembed`, which replaces the vectors). Re-applying is a no-op."""
    if not isinstance(embedding_dim, int) or not 0 < embedding_dim <= 16000:
        raise MigrationError(f"invalid embedding dimension {embedding_dim!r}")
    db.bootstrap()
    applied: list[str] = []
    with db.connect() as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key("migrate", db.schema),))
        _ensure_version_table(conn)
        done = {
            row["version"]: row["checksum"]
            for row in conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
        }
        for migration in load_migrations():
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} was edited after it was applied "
                        f"to schema {db.schema!r}; add a new migration instead"
                    )
                continue
            sql = migration.sql.replace(EMBEDDING_DIM_PLACEHOLDER, str(embedding_dim))
            try:
                conn.execute(sql.encode())  # a trusted package file, no parameters
            except psycopg.Error as exc:
                raise MigrationError(f"migration {migration.version:04d}_{migration.name} failed: {exc}") from exc
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
            applied.append(f"{migration.version:04d}_{migration.name}")
        conn.execute(
            """INSERT INTO catalog_meta (key, value) VALUES ('embedding_model', %s), ('embedding_dim', %s)
                   ON CONFLICT (key) DO NOTHING""",
            (embedding_model, str(embedding_dim)),
        )
        if check_model:
            check_embedding_model(conn, embedding_model=embedding_model, embedding_dim=embedding_dim)
        version = conn.execute("SELECT coalesce(max(version), 0) AS v FROM schema_migrations").fetchone()
    return MigrationReport(applied=applied, version=int(version["v"]) if version else 0)


def check_embedding_model(conn: psycopg.Connection[Any], *, embedding_model: str, embedding_dim: int) -> None:
    """Raise if the catalog's vectors were made by another model or have another dimension."""
    meta = {r["key"]: r["value"] for r in conn.execute("SELECT key, value FROM catalog_meta").fetchall()}
    catalog_model = meta.get("embedding_model", embedding_model)
    catalog_dim = int(meta.get("embedding_dim", embedding_dim))
    if catalog_model != embedding_model or catalog_dim != embedding_dim:
        raise EmbeddingMismatchError(
            f"the catalog's embeddings were made with {catalog_model} ({catalog_dim} dimensions) but "
            f"{embedding_model} ({embedding_dim} dimensions) is configured: re-embed the catalog with it "
            "(jdgraph catalog reembed --catalog NAME), set JDGRAPH_EMBEDDINGS back (minilm: the encoder before the "
            "shipped tuned one became the default), or use another schema (JDGRAPH_DB_SCHEMA) for the new model",
            catalog_model=catalog_model,
            catalog_dim=catalog_dim,
            configured_model=embedding_model,
            configured_dim=embedding_dim,
        )


def schema_version(db: Database) -> int:
    with db.connect() as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL AS ok").fetchone()
        if not exists or not exists["ok"]:
            return 0
        row = conn.execute("SELECT coalesce(max(version), 0) AS v FROM schema_migrations").fetchone()
        return int(row["v"]) if row else 0
