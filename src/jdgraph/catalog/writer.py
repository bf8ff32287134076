"""The catalog's one writer: every importer (starter, ESCO, O*NET) goes through :meth:`CatalogWriter.apply`.

An import is one transaction. Records are streamed into temporary staging tables with ``COPY``, then merged with
set-based upserts keyed by ``(source, source_id)`` that touch only rows whose content changed; rows of the source
that a new release dropped are retired (skills, roles) or deleted (aliases, KRAs, links). Every text whose
embedding is missing — new rows, changed labels — is embedded in the same transaction, through the embedding
cache (committed on its own connection, so a failed import's retry embeds nothing twice). A failure anywhere
rolls the whole import back: nothing is ever half-imported.

Readers keep the last committed release while an import runs (MVCC): the import says how far it got in a row of
``import_progress`` committed on a connection of its own (:func:`import_in_progress`), so a reader of a catalog
whose first import has not committed yet can say "being imported, N% done", and every vector is computed before
an index is dropped, so the drop's lock (which blocks readers of that table until commit) is held only while the
vectors are written and the index rebuilt, not for the model's minutes.

The statements an import runs are in :mod:`jdgraph.catalog.import_sql`; its progress row in
:mod:`jdgraph.catalog.import_progress`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg

from jdgraph.catalog.db import Database, advisory_key
from jdgraph.catalog.embeddings import CachedEmbeddings, ModelEmbeddings
from jdgraph.catalog.import_progress import ImportProgress, Progress, ProgressRow, import_in_progress
from jdgraph.catalog.import_sql import MERGE, PRUNE, STAGE_INDEXES, STAGES
from jdgraph.catalog.normalize import normalize_alias, normalize_text
from jdgraph.catalog.records import NATURE_PROFILE, ImportBundle, RoleRecord, SkillRecord, TitleExampleRecord
from jdgraph.errors import CatalogDataError, CatalogError, EmbeddingMismatchError

__all__ = ["EMBEDDED_TEXTS", "CatalogWriter", "ImportProgress", "ImportReport", "Progress", "import_in_progress"]

log = logging.getLogger(__name__)

# (table, text column, embedding index). The index is dropped and rebuilt around a large batch of new vectors:
# building an HNSW index once is several times faster than inserting that many rows into it.
EMBEDDED_TEXTS = (
    ("skill_aliases", "alias", "skill_aliases_embedding_idx"),
    ("role_aliases", "alias", "role_aliases_embedding_idx"),
    ("role_kras", "text", "role_kras_embedding_idx"),
    ("dimensions", "name", "dimensions_embedding_idx"),
    ("role_title_examples", "title", "role_title_examples_embedding_idx"),
)
_VACUUMED = (
    "dimensions", "skills", "skill_aliases", "skill_dimensions", "roles", "role_aliases", "role_kras",
    "role_skills", "role_dimensions", "skill_relations", "role_title_examples",
)  # fmt: skip
_REBUILD_INDEX_AT = 5000  # new vectors in one table above which the index is rebuilt rather than updated
_EMBED_CHUNK = 8192  # texts per embedding call (sorted by length first): few calls, bounded memory
# How far an import is, by stage: reading and staging are quick, embedding takes most of the time.
_PERCENT_STAGED, _PERCENT_MERGED, _PERCENT_EMBEDDED, _PERCENT_WRITTEN = 5.0, 10.0, 85.0, 98.0


@dataclass
class ImportReport:
    source: str
    version: str
    skipped: bool = False
    changed: dict[str, int] = field(default_factory=dict)
    """Rows inserted or updated per table (0 everywhere on a re-import of the same files)."""
    removed: dict[str, int] = field(default_factory=dict)
    """Rows of this source retired (skills, roles) or deleted (aliases, KRAs, links) because the files dropped them."""
    embedded: int = 0
    """Texts whose vectors were written (new or changed labels); computed ones are those not already cached."""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def total_changed(self) -> int:
        return sum(self.changed.values()) + sum(self.removed.values())


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


class CatalogWriter:
    """Applies import bundles to one catalog (one schema) and fills missing embeddings."""

    def __init__(self, db: Database, embeddings: ModelEmbeddings, *, progress: Progress | None = None) -> None:
        self.db = db
        self.embeddings = embeddings
        self.progress = progress or (lambda stage, done, total: None)
        self._status: ProgressRow | None = None

    def _report(self, stage: str, done: int, total: int, percent: float) -> None:
        """Tell readers (the progress row, during :meth:`apply`) and the caller (``progress``)."""
        if self._status is not None:
            self._status.update(stage, percent)
        self.progress(stage, done, total)

    # -- import ---------------------------------------------------------------------------------------------------
    def _lock_writes(self, conn: psycopg.Connection[Any]) -> None:
        """Serialise this catalog's writers (imports, re-embedding, filling missing vectors) until ``conn``'s
        transaction ends; writers of other catalogs (other schemas) go on."""
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key("catalog-write", self.db.schema),))

    def last_import_hash(self, source: str) -> str | None:
        with self.db.connection() as conn:
            row = conn.execute(
                "SELECT content_hash FROM catalog_imports WHERE source = %s ORDER BY id DESC LIMIT 1", (source,)
            ).fetchone()
        return str(row["content_hash"]) if row else None

    def apply(self, bundle: ImportBundle, *, force: bool = False, complete: bool = True) -> ImportReport:
        """Import ``bundle`` in one transaction. ``complete=False`` (a slice of a source) retires nothing.

        An import whose files hash like the last import of the same source is skipped unless ``force``; forced,
        it runs in full and changes nothing (every upsert compares content first)."""
        t0 = time.perf_counter()
        report = ImportReport(source=bundle.source, version=bundle.version, notes=bundle.notes)
        if not force and self.last_import_hash(bundle.source) == bundle.content_hash and not self.missing_vectors():
            report.skipped = True
            report.seconds = round(time.perf_counter() - t0, 3)
            return report
        try:
            with self.db.connection() as conn, conn.transaction():
                self._lock_writes(conn)
                pid = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()
                self._status = ProgressRow(self.db, bundle.source, int(pid["pid"])) if pid else None
                self._stage(conn, bundle)
                src = {"src": bundle.source}
                for i, (name, sql) in enumerate(MERGE):
                    changed = conn.execute(sql, src).rowcount
                    report.changed[name] = report.changed.get(name, 0) + max(changed, 0)
                    step = (_PERCENT_MERGED - _PERCENT_STAGED) * (i + 1) / len(MERGE)
                    self._report(f"merged {name}", max(changed, 0), max(changed, 0), _PERCENT_STAGED + step)
                if complete:
                    for name, sql in PRUNE:
                        report.removed[name] = max(conn.execute(sql, src).rowcount, 0)
                    removed = sum(report.removed.values())
                    self._report("removed rows the release dropped", removed, removed, _PERCENT_MERGED)
                report.embedded = self._embed_missing(conn)
                report.changed["centroids seeded"] = self._seed_centroids(conn)
                seeded = report.changed["centroids seeded"]
                self._report("seeded centroids", seeded, seeded, _PERCENT_WRITTEN)
                report.seconds = round(time.perf_counter() - t0, 3)
                conn.execute(
                    """INSERT INTO catalog_imports (source, version, content_hash, counts, embedded, seconds)
                       VALUES (%s, %s, %s, %s, %s, %s)""",
                    (
                        bundle.source,
                        bundle.version,
                        bundle.content_hash,
                        _json({"changed": report.changed, "removed": report.removed, "notes": report.notes}),
                        report.embedded,
                        report.seconds,
                    ),
                )
        except psycopg.errors.IntegrityError as exc:
            raise CatalogError(f"import of {bundle.source} violates a catalog constraint: {exc}") from exc
        finally:
            status, self._status = self._status, None
            if status is not None:
                status.close()
        if report.total_changed or report.embedded:
            self.progress("vacuum and analyze", 0, 0)
            self._vacuum()
        return report

    def import_title_examples(
        self, source: str, examples: Sequence[TitleExampleRecord], *, content_hash: str, force: bool = False
    ) -> ImportReport:
        """Replace ``source``'s coded vacancy titles with ``examples`` (each naming its role by ``source_id``) and
        embed them, in one transaction. The same file again is skipped unless ``force``. Titles coded to roles the
        catalog lacks are left out and said in the report's notes (examples vote only for roles that exist); a
        file with no title coded to one of its roles is a CatalogDataError naming the first line."""
        t0 = time.perf_counter()
        report = ImportReport(source=source, version=content_hash[:12])
        if not examples:
            raise CatalogDataError("no title examples to import", file=source)
        if not force and self.last_import_hash(source) == content_hash and not self.missing_vectors():
            report.skipped = True
            return report
        with self.db.connection() as conn, conn.transaction():
            self._lock_writes(conn)
            wanted = sorted({e.role_source_id for e in examples})
            roles = {
                r["source_id"]: r["id"]
                for r in conn.execute(
                    "SELECT id, source_id FROM roles WHERE source_id = ANY(%s) AND status <> 'retired'", (wanted,)
                ).fetchall()
            }
            unknown = [e for e in examples if e.role_source_id not in roles]
            if len(unknown) == len(examples):
                raise CatalogDataError(
                    f"no title is coded to a role of this catalog (line {unknown[0].line}: {unknown[0].role_source_id}"
                    "); import the taxonomy they are coded in first", file=source,
                )  # fmt: skip
            if unknown:
                # A release retires occupations; a title coded to one votes for nothing here, and is said.
                report.notes.append(
                    f"{len(unknown)} title(s) coded to roles this catalog lacks were left out (first: line "
                    f"{unknown[0].line}, {unknown[0].role_source_id})"
                )
                examples = [e for e in examples if e.role_source_id in roles]
            report.removed["role_title_examples"] = max(
                conn.execute("DELETE FROM role_title_examples WHERE source = %s", (source,)).rowcount, 0
            )
            rows = ((roles[e.role_source_id], e.title, source, e.line) for e in examples)
            with conn.cursor().copy(
                "COPY role_title_examples (role_id, title, source, source_line) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
            report.changed["role_title_examples"] = len(examples)
            report.embedded = self._embed_missing(conn)
            report.seconds = round(time.perf_counter() - t0, 3)
            conn.execute(
                """INSERT INTO catalog_imports (source, version, content_hash, counts, embedded, seconds)
                   VALUES (%s, %s, %s, %s, %s, %s)""",
                (source, report.version, content_hash, _json({"changed": report.changed, "removed": report.removed}),
                 report.embedded, report.seconds),
            )  # fmt: skip
        return report

    def _vacuum(self) -> None:
        """Fresh statistics and a clean visibility map for the tables an import rewrote, at once: left to
        autovacuum, the first minutes of lookups after a large import run beside it on a small machine, with
        plans made from stale statistics."""
        with self.db.connection() as conn:  # autocommit: VACUUM cannot run inside a transaction
            for table in _VACUUMED:
                conn.execute(f"VACUUM (ANALYZE) {table}")

    def _stage(self, conn: psycopg.Connection[Any], bundle: ImportBundle) -> None:
        for table, columns in STAGES.items():
            conn.execute(f"CREATE TEMP TABLE {table} ({columns}) ON COMMIT DROP")
        skill_aliases: list[tuple[Any, ...]] = []
        skill_dims: list[tuple[Any, ...]] = []
        role_aliases: list[tuple[Any, ...]] = []
        role_kras: list[tuple[Any, ...]] = []
        self._report("staging records", 0, 0, 1.0)

        def dimension_rows() -> Iterable[tuple[Any, ...]]:
            for i, d in enumerate(bundle.dimensions):
                yield (i, d.source_id, d.slug, d.name, d.rationale, d.kind, d.parent)

        def skill_rows() -> Iterable[tuple[Any, ...]]:
            for i, s in enumerate(bundle.skills):
                _check_skill(s)
                yield (
                    i, s.source_id, s.slug, s.name, s.nature, s.category, s.sub_category, s.volatility,
                    s.typical_lifespan, s.version_strategy, s.description, _json(s.context_tags), _json(s.attributes),
                )  # fmt: skip
                for j, alias in enumerate(s.aliases):
                    norm = normalize_alias(alias.text)
                    if norm:
                        skill_aliases.append(
                            (len(skill_aliases), s.source_id, alias.text, norm, alias.alias_type, j == 0,
                             alias.match_case)
                        )  # fmt: skip
                skill_dims.extend((s.source_id, d) for d in s.dimensions)

        def role_rows() -> Iterable[tuple[Any, ...]]:
            for i, r in enumerate(bundle.roles):
                _check_role(r)
                yield (
                    i, r.source_id, r.slug, r.name, r.description, r.domain, r.archetype, r.code, r.parent,
                    _json(r.attributes),
                )  # fmt: skip
                for j, alias in enumerate([r.name, *r.aliases]):
                    norm = normalize_alias(alias)
                    if norm:
                        role_aliases.append((len(role_aliases), r.source_id, alias, norm, j == 0))
                for text, kind in r.kras:
                    norm = normalize_text(text)
                    if norm:
                        role_kras.append((len(role_kras), r.source_id, text, norm, kind))

        self._copy(conn, "st_dimensions", dimension_rows())
        self._copy(conn, "st_skills", skill_rows())
        self._copy(conn, "st_skill_aliases", skill_aliases)
        self._copy(conn, "st_skill_dimensions", skill_dims)
        self._copy(conn, "st_roles", role_rows())
        self._copy(conn, "st_role_aliases", role_aliases)
        self._copy(conn, "st_role_kras", role_kras)
        self._copy(conn, "st_role_skills", ((x.role, x.skill, x.importance, x.weight) for x in bundle.role_skills))
        self._copy(
            conn, "st_role_dimensions", ((x.role, x.dimension, x.importance, x.weight) for x in bundle.role_dimensions)
        )
        self._copy(conn, "st_skill_relations", ((x.skill, x.related, x.kind) for x in bundle.skill_relations))
        for table, columns in STAGE_INDEXES.items():
            conn.execute(f"CREATE INDEX ON {table} ({columns})")
        for table in STAGES:
            conn.execute(f"ANALYZE {table}")
        # A slug another source already uses gets this source's name as a suffix (slugs are unique per catalog).
        for table, stage in (("skills", "st_skills"), ("roles", "st_roles"), ("dimensions", "st_dimensions")):
            conn.execute(
                f"""UPDATE {stage} st SET slug = st.slug || '-' || %(src)s FROM {table} t
                    WHERE t.slug = st.slug AND t.source <> %(src)s""",
                {"src": bundle.source},
            )

    def _copy(self, conn: psycopg.Connection[Any], table: str, rows: Iterable[Sequence[Any]]) -> int:
        n = 0
        with conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                n += 1
        staged = (list(STAGES).index(table) + 1) / len(STAGES)
        self._report(f"staged {table.removeprefix('st_')}", n, n, 1.0 + (_PERCENT_STAGED - 1.0) * staged)
        return n

    # -- embeddings -----------------------------------------------------------------------------------------------
    def missing_vectors(self) -> int:
        """How many catalog texts have no embedding (0 in a healthy catalog)."""
        return sum(self.missing_vectors_by_table().values())

    def missing_vectors_by_table(self) -> dict[str, int]:
        out: dict[str, int] = {}
        with self.db.connection() as conn:
            for table, _, _ in EMBEDDED_TEXTS:
                row = conn.execute(f"SELECT count(*) AS n FROM {table} WHERE embedding IS NULL").fetchone()
                out[table] = int(row["n"]) if row else 0
        return out

    def embed_missing(self) -> int:
        """Embed every catalog text that has no vector (its own transaction). Returns how many were written."""
        with self.db.connection() as conn, conn.transaction():
            self._lock_writes(conn)
            n = self._embed_missing(conn)
            self._seed_centroids(conn)
        return n

    def reembed(self) -> tuple[str | None, int, int]:
        """Replace every catalog vector with this writer's model's, in one transaction (readers see the old
        catalog until it commits), and record the model: what an upgrade to another encoder of the same dimension
        needs. Returns (the model the vectors were made with, texts embedded, observed role centroids reset).

        A role's observed centroid is a running mean of the JDs persist saw, embedded by the old model; it cannot
        be carried into the new model's space without those texts, so it goes back to its seeded centroid (title
        and KRAs) and runs count towards it again."""
        model, dim = self.embeddings.model_id, self.embeddings.dimension
        if isinstance(self.embeddings, CachedEmbeddings):
            # Every text is embedded before the transaction below locks a row: the embedding cache keeps the vectors
            # (committed on their own), so inside it they are looked up, and a run that updates a role's centroid
            # meanwhile waits for the writes, not for minutes of the model (ESCO: ~130,000 texts).
            texts: list[str] = []
            with self.db.connection() as conn:
                for table, text_col, _ in EMBEDDED_TEXTS:
                    rows = conn.execute(f"SELECT {text_col} AS text FROM {table} ORDER BY length({text_col})")
                    texts += [r["text"] for r in rows.fetchall()]
            for i in range(0, len(texts), _EMBED_CHUNK):
                self.embeddings.embed_array(texts[i : i + _EMBED_CHUNK])
        with self.db.connection() as conn, conn.transaction():
            self._lock_writes(conn)
            meta = {r["key"]: r["value"] for r in conn.execute("SELECT key, value FROM catalog_meta").fetchall()}
            if int(meta.get("embedding_dim", dim)) != dim:
                raise EmbeddingMismatchError(
                    f"the catalog's vectors have {meta['embedding_dim']} dimensions and {model} gives {dim}: a "
                    "model of another dimension needs its own schema (JDGRAPH_DB_SCHEMA) and a fresh import",
                    catalog_model=meta.get("embedding_model", ""),
                    catalog_dim=int(meta["embedding_dim"]),
                    configured_model=model,
                    configured_dim=dim,
                )
            for table, _, _ in EMBEDDED_TEXTS:
                conn.execute(f"UPDATE {table} SET embedding = NULL")
            conn.execute("UPDATE skills SET centroid = NULL")
            observed = conn.execute("UPDATE roles SET centroid = NULL, centroid_n = 0 WHERE centroid_n > 1").rowcount
            conn.execute("UPDATE roles SET centroid = NULL WHERE centroid_n <= 1")
            conn.execute("DELETE FROM role_centroid_runs")
            n = self._embed_missing(conn)
            self._seed_centroids(conn)
            conn.execute(
                """INSERT INTO catalog_meta (key, value) VALUES ('embedding_model', %s), ('embedding_dim', %s)
                       ON CONFLICT (key) DO UPDATE SET value = excluded.value""",
                (model, str(dim)),
            )
        return meta.get("embedding_model"), n, max(observed, 0)

    def _embed_missing(self, conn: psycopg.Connection[Any]) -> int:
        """Embed every text without a vector, table by table; a large batch rebuilds the table's index once.

        Every vector is computed before the first index is dropped: a dropped index holds its table against
        readers until commit, so that lock spans writing and indexing only."""
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS st_vectors (id bigint, embedding vector) ON COMMIT DROP")
        pending: list[tuple[str, str, list[dict[str, Any]]]] = []
        for table, text_col, index in EMBEDDED_TEXTS:
            # Ordered by length, each chunk holds texts of similar length, so the model's batches carry little
            # padding: the import embeds about as fast as one call over all its texts would.
            rows = conn.execute(
                f"SELECT id, {text_col} AS text FROM {table} WHERE embedding IS NULL ORDER BY length({text_col}), id"
            ).fetchall()
            if rows:
                pending.append((table, index, rows))
        total = sum(len(rows) for _, _, rows in pending)
        done = 0
        span = _PERCENT_EMBEDDED - _PERCENT_MERGED
        computed: list[tuple[str, str, list[dict[str, Any]], np.ndarray]] = []
        for table, index, rows in pending:
            vectors = []
            for i in range(0, len(rows), _EMBED_CHUNK):
                chunk = rows[i : i + _EMBED_CHUNK]
                vectors.append(self.embeddings.embed_array([r["text"] for r in chunk]))
                done += len(chunk)
                self._report(f"embedding {table}", i + len(chunk), len(rows), _PERCENT_MERGED + span * done / total)
            computed.append((table, index, rows, np.vstack(vectors)))
        span = _PERCENT_WRITTEN - _PERCENT_EMBEDDED
        for n, (table, index, rows, matrix) in enumerate(computed):
            rebuild = len(rows) >= _REBUILD_INDEX_AT
            percent = _PERCENT_EMBEDDED + span * n / len(computed)
            if rebuild:
                conn.execute(f"DROP INDEX IF EXISTS {index}")
            self._write_vectors(conn, table, rows, matrix)
            self._report(f"wrote vectors of {table}", len(rows), len(rows), percent)
            if rebuild:
                # Built once after the batch, with pgvector's parallel build (two workers by default).
                self._report(f"indexing {table}", 0, 1, percent)
                conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
                conn.execute(f"CREATE INDEX {index} ON {table} USING hnsw (embedding vector_cosine_ops)")
                self._report(f"indexing {table}", 1, 1, _PERCENT_EMBEDDED + span * (n + 1) / len(computed))
        return total

    def _write_vectors(
        self, conn: psycopg.Connection[Any], table: str, rows: list[dict[str, Any]], vectors: np.ndarray
    ) -> None:
        conn.execute("TRUNCATE st_vectors")
        with conn.cursor().copy("COPY st_vectors (id, embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "vector"])
            for r, vec in zip(rows, vectors, strict=True):
                copy.write_row((r["id"], vec))
        conn.execute(f"UPDATE {table} t SET embedding = v.embedding FROM st_vectors v WHERE t.id = v.id")

    def _seed_centroids(self, conn: psycopg.Connection[Any]) -> int:
        """Centroids from stored vectors (nothing is embedded here):

        - a role never observed in a run (n <= 1) has the normalised mean of its title and KRA vectors, re-seeded
          when those change; observed centroids are left to persist's running mean;
        - a skill has the normalised mean of its alias vectors, refreshed when its aliases change."""
        roles = conn.execute(
            """UPDATE roles r SET centroid = x.c, centroid_n = 1
               FROM (SELECT role_id, l2_normalize(avg(embedding)) AS c FROM (
                         SELECT role_id, embedding FROM role_kras WHERE embedding IS NOT NULL
                         UNION ALL SELECT role_id, embedding FROM role_aliases WHERE embedding IS NOT NULL) u
                     GROUP BY role_id) x
               WHERE r.id = x.role_id AND r.centroid_n <= 1 AND r.centroid IS DISTINCT FROM x.c"""
        ).rowcount
        skills = conn.execute(
            """UPDATE skills s SET centroid = x.c
               FROM (SELECT skill_id, l2_normalize(avg(embedding)) AS c FROM skill_aliases
                     WHERE embedding IS NOT NULL GROUP BY skill_id) x
               WHERE s.id = x.skill_id AND s.centroid IS DISTINCT FROM x.c"""
        ).rowcount
        return max(roles, 0) + max(skills, 0)


def _check_skill(s: SkillRecord) -> None:
    if not s.source_id or not s.slug or not s.name.strip():
        raise CatalogDataError(f"skill record {s.source_id!r} has no id, slug or name")
    if s.nature not in NATURE_PROFILE:
        raise CatalogDataError(f"skill {s.source_id!r} has unknown nature {s.nature!r}")


def _check_role(r: RoleRecord) -> None:
    if not r.source_id or not r.slug or not r.name.strip():
        raise CatalogDataError(f"role record {r.source_id!r} has no id, slug or name")
