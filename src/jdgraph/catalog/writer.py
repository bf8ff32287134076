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
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import psycopg

from jdgraph.catalog.db import Database
from jdgraph.catalog.embeddings import ModelEmbeddings
from jdgraph.catalog.normalize import normalize_alias, normalize_text
from jdgraph.catalog.records import NATURE_PROFILE, ImportBundle, RoleRecord, SkillRecord
from jdgraph.errors import CatalogDataError, CatalogError

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): called as an import advances (the CLI draws a bar from it)."""

# (table, text column, embedding index). The index is dropped and rebuilt around a large batch of new vectors:
# building an HNSW index once is several times faster than inserting that many rows into it.
EMBEDDED_TEXTS = (
    ("skill_aliases", "alias", "skill_aliases_embedding_idx"),
    ("role_aliases", "alias", "role_aliases_embedding_idx"),
    ("role_kras", "text", "role_kras_embedding_idx"),
    ("dimensions", "name", "dimensions_embedding_idx"),
)
_VACUUMED = (
    "dimensions", "skills", "skill_aliases", "skill_dimensions", "roles", "role_aliases", "role_kras",
    "role_skills", "role_dimensions", "skill_relations",
)  # fmt: skip
_REBUILD_INDEX_AT = 5000  # new vectors in one table above which the index is rebuilt rather than updated
_EMBED_CHUNK = 8192  # texts per embedding call (sorted by length first): few calls, bounded memory
_STATUS_EVERY_S = 1.0  # the progress row is written at most this often within a stage
# How far an import is, by stage: reading and staging are quick, embedding takes most of the time.
_PERCENT_STAGED, _PERCENT_MERGED, _PERCENT_EMBEDDED, _PERCENT_WRITTEN = 5.0, 10.0, 85.0, 98.0


@dataclass(frozen=True)
class ImportProgress:
    """An import under way in a catalog, as its progress row says."""

    source: str
    stage: str
    percent: float
    started_at: datetime
    updated_at: datetime

    def describe(self) -> str:
        return f"{self.source} import started {self.started_at:%H:%M:%S}: {self.stage}, {self.percent:.0f}% done"


def import_in_progress(db: Database) -> ImportProgress | None:
    """The import running in ``db``'s catalog, if any: its progress row, while the server process of its
    transaction lives (a killed import's row is ignored, and replaced by the next import)."""
    try:
        with db.connection() as conn:
            row = conn.execute(
                """SELECT source, stage, percent, started_at, updated_at FROM import_progress p
                   WHERE EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = p.backend_pid)
                   ORDER BY updated_at DESC LIMIT 1"""
            ).fetchone()
    except psycopg.errors.UndefinedTable:
        return None  # a schema not migrated yet: nothing can be importing into it
    return ImportProgress(**row) if row else None


class _ProgressRow:
    """The progress row of one import, written on its own autocommit connection so readers see it at once."""

    def __init__(self, db: Database, source: str, backend_pid: int) -> None:
        self.conn = db.connect(autocommit=True)
        self.source = source
        self.last: tuple[str, float, float] = ("", -1.0, 0.0)
        self.conn.execute(
            """INSERT INTO import_progress (source, stage, percent, backend_pid) VALUES (%s, 'starting', 0, %s)
               ON CONFLICT (source) DO UPDATE SET stage = 'starting', percent = 0, backend_pid = EXCLUDED.backend_pid,
                   started_at = now(), updated_at = now()""",
            (source, backend_pid),
        )

    def update(self, stage: str, percent: float) -> None:
        last_stage, last_percent, last_at = self.last
        now = time.monotonic()
        if stage == last_stage and (int(percent) == int(last_percent) or now - last_at < _STATUS_EVERY_S):
            return
        self.last = (stage, percent, now)
        self.conn.execute(
            "UPDATE import_progress SET stage = %s, percent = %s, updated_at = now() WHERE source = %s",
            (stage, round(percent, 1), self.source),
        )

    def close(self) -> None:
        # After a failure (the server gone) this must not mask the import's own error; a row left behind is
        # ignored once the import's server process is gone.
        with suppress(psycopg.Error):
            self.conn.execute("DELETE FROM import_progress WHERE source = %s", (self.source,))
        self.conn.close()


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


_STAGES = {
    "st_dimensions": "ord int, source_id text, slug text, name text, rationale text, kind text, parent text",
    "st_skills": """ord int, source_id text, slug text, name text, nature text, category text, sub_category text,
                    volatility text, typical_lifespan text, version_strategy text, description text,
                    context_tags text, attributes text""",
    "st_skill_aliases": """ord int, skill text, alias text, alias_norm text, alias_type text, is_primary bool,
                           match_case bool""",
    "st_skill_dimensions": "skill text, dimension text",
    "st_roles": """ord int, source_id text, slug text, name text, description text, domain text, archetype text,
                   code text, parent text, attributes text""",
    "st_role_aliases": "ord int, role text, alias text, alias_norm text, is_primary bool",
    "st_role_kras": "ord int, role text, text text, text_norm text, kind text",
    "st_role_skills": "role text, skill text, importance text, weight real",
    "st_role_dimensions": "role text, dimension text, importance text, weight real",
    "st_skill_relations": "skill text, related text, kind text",
}
_STAGE_INDEXES = {
    "st_skills": "source_id",
    "st_skill_aliases": "skill, alias_norm",
    "st_skill_dimensions": "skill, dimension",
    "st_roles": "source_id",
    "st_role_aliases": "role, alias_norm",
    "st_role_kras": "role, text_norm",
    "st_role_skills": "role, skill",
    "st_role_dimensions": "role, dimension",
    "st_dimensions": "source_id",
}

# Merge statements, in order. %(src)s is the bundle's source. Each upsert changes a row only when its content
# differs, so a re-import of the same files reports 0 rows and leaves every vector in place.
_MERGE: list[tuple[str, str]] = [
    (
        "dimensions",
        """INSERT INTO dimensions (slug, name, rationale, kind, source, source_id)
           SELECT slug, name, rationale, kind, %(src)s, source_id FROM st_dimensions ORDER BY ord
           ON CONFLICT (source, source_id) DO UPDATE SET slug = EXCLUDED.slug, name = EXCLUDED.name,
               rationale = EXCLUDED.rationale, kind = EXCLUDED.kind,
               embedding = CASE WHEN dimensions.name = EXCLUDED.name THEN dimensions.embedding END
           WHERE (dimensions.slug, dimensions.name, dimensions.rationale, dimensions.kind)
                 IS DISTINCT FROM (EXCLUDED.slug, EXCLUDED.name, EXCLUDED.rationale, EXCLUDED.kind)""",
    ),
    (
        "dimension parents",
        """UPDATE dimensions d SET parent_id = p.id FROM st_dimensions st
           JOIN dimensions p ON p.source = %(src)s AND p.source_id = st.parent
           WHERE d.source = %(src)s AND d.source_id = st.source_id AND d.parent_id IS DISTINCT FROM p.id""",
    ),
    (
        "skills",
        """INSERT INTO skills (slug, display_name, nature, category, sub_category, volatility, typical_lifespan,
                               version_strategy, description, context_tags, attributes, source, source_id)
           SELECT slug, name, nature, category, sub_category, volatility, typical_lifespan, version_strategy,
                  description, ARRAY(SELECT jsonb_array_elements_text(context_tags::jsonb)), attributes::jsonb,
                  %(src)s, source_id
           FROM st_skills ORDER BY ord
           ON CONFLICT (source, source_id) DO UPDATE SET slug = EXCLUDED.slug, display_name = EXCLUDED.display_name,
               nature = EXCLUDED.nature, category = EXCLUDED.category, sub_category = EXCLUDED.sub_category,
               volatility = EXCLUDED.volatility, typical_lifespan = EXCLUDED.typical_lifespan,
               version_strategy = EXCLUDED.version_strategy, description = EXCLUDED.description,
               context_tags = EXCLUDED.context_tags, attributes = EXCLUDED.attributes, status = 'active',
               updated_at = now()
           WHERE (skills.slug, skills.display_name, skills.nature, skills.category, skills.sub_category,
                  skills.volatility, skills.typical_lifespan, skills.version_strategy, skills.description,
                  skills.context_tags, skills.attributes, skills.status)
                 IS DISTINCT FROM (EXCLUDED.slug, EXCLUDED.display_name, EXCLUDED.nature, EXCLUDED.category,
                  EXCLUDED.sub_category, EXCLUDED.volatility, EXCLUDED.typical_lifespan, EXCLUDED.version_strategy,
                  EXCLUDED.description, EXCLUDED.context_tags, EXCLUDED.attributes, 'active')""",
    ),
    (
        "skill_aliases",
        """INSERT INTO skill_aliases (skill_id, alias, alias_norm, alias_type, is_primary, match_case, source)
           SELECT DISTINCT ON (s.id, st.alias_norm) s.id, st.alias, st.alias_norm, st.alias_type, st.is_primary,
                  st.match_case, %(src)s
           FROM st_skill_aliases st JOIN skills s ON s.source = %(src)s AND s.source_id = st.skill
           ORDER BY s.id, st.alias_norm, st.is_primary DESC, st.ord
           ON CONFLICT (skill_id, alias_norm) DO UPDATE SET alias = EXCLUDED.alias,
               alias_type = EXCLUDED.alias_type, is_primary = EXCLUDED.is_primary, match_case = EXCLUDED.match_case,
               source = EXCLUDED.source,
               embedding = CASE WHEN skill_aliases.alias = EXCLUDED.alias THEN skill_aliases.embedding END
           WHERE (skill_aliases.alias, skill_aliases.alias_type, skill_aliases.is_primary, skill_aliases.match_case,
                  skill_aliases.source)
                 IS DISTINCT FROM (EXCLUDED.alias, EXCLUDED.alias_type, EXCLUDED.is_primary, EXCLUDED.match_case,
                  EXCLUDED.source)""",
    ),
    (
        "skill_dimensions",
        """INSERT INTO skill_dimensions (skill_id, dimension_id, source)
           SELECT DISTINCT s.id, d.id, %(src)s FROM st_skill_dimensions st
           JOIN skills s ON s.source = %(src)s AND s.source_id = st.skill
           JOIN dimensions d ON d.source = %(src)s AND d.source_id = st.dimension
           ON CONFLICT DO NOTHING""",
    ),
    (
        "roles",
        """INSERT INTO roles (slug, display_name, description, domain, archetype, code, attributes, source, source_id)
           SELECT slug, name, description, domain, archetype, code, attributes::jsonb, %(src)s, source_id
           FROM st_roles ORDER BY ord
           ON CONFLICT (source, source_id) DO UPDATE SET slug = EXCLUDED.slug, display_name = EXCLUDED.display_name,
               description = EXCLUDED.description, domain = EXCLUDED.domain, archetype = EXCLUDED.archetype,
               code = EXCLUDED.code, attributes = EXCLUDED.attributes, status = 'active', updated_at = now()
           WHERE (roles.slug, roles.display_name, roles.description, roles.domain, roles.archetype, roles.code,
                  roles.attributes, roles.status)
                 IS DISTINCT FROM (EXCLUDED.slug, EXCLUDED.display_name, EXCLUDED.description, EXCLUDED.domain,
                  EXCLUDED.archetype, EXCLUDED.code, EXCLUDED.attributes, 'active')""",
    ),
    (
        "role parents",
        """UPDATE roles r SET parent_id = p.id FROM st_roles st
           JOIN roles p ON p.source = %(src)s AND p.source_id = st.parent
           WHERE r.source = %(src)s AND r.source_id = st.source_id AND r.parent_id IS DISTINCT FROM p.id""",
    ),
    (
        "role_aliases",
        """INSERT INTO role_aliases (role_id, alias, alias_norm, is_primary)
           SELECT DISTINCT ON (r.id, st.alias_norm) r.id, st.alias, st.alias_norm, st.is_primary
           FROM st_role_aliases st JOIN roles r ON r.source = %(src)s AND r.source_id = st.role
           ORDER BY r.id, st.alias_norm, st.is_primary DESC, st.ord
           ON CONFLICT (role_id, alias_norm) DO UPDATE SET alias = EXCLUDED.alias, is_primary = EXCLUDED.is_primary,
               embedding = CASE WHEN role_aliases.alias = EXCLUDED.alias THEN role_aliases.embedding END
           WHERE (role_aliases.alias, role_aliases.is_primary)
                 IS DISTINCT FROM (EXCLUDED.alias, EXCLUDED.is_primary)""",
    ),
    (
        "role_kras",
        """INSERT INTO role_kras (role_id, text, text_norm, kind, source)
           SELECT DISTINCT ON (r.id, st.text_norm) r.id, st.text, st.text_norm, st.kind, %(src)s
           FROM st_role_kras st JOIN roles r ON r.source = %(src)s AND r.source_id = st.role
           ORDER BY r.id, st.text_norm, st.ord
           ON CONFLICT (role_id, text_norm) DO UPDATE SET text = EXCLUDED.text, kind = EXCLUDED.kind,
               source = EXCLUDED.source,
               embedding = CASE WHEN role_kras.text = EXCLUDED.text THEN role_kras.embedding END
           WHERE (role_kras.text, role_kras.kind, role_kras.source)
                 IS DISTINCT FROM (EXCLUDED.text, EXCLUDED.kind, EXCLUDED.source)""",
    ),
    (
        "role_skills",
        """INSERT INTO role_skills (role_id, skill_id, importance, weight, source)
           SELECT DISTINCT ON (r.id, s.id) r.id, s.id, st.importance, st.weight, %(src)s FROM st_role_skills st
           JOIN roles r ON r.source = %(src)s AND r.source_id = st.role
           JOIN skills s ON s.source = %(src)s AND s.source_id = st.skill
           ORDER BY r.id, s.id, st.weight DESC
           ON CONFLICT (role_id, skill_id) DO UPDATE SET importance = EXCLUDED.importance, weight = EXCLUDED.weight
           WHERE (role_skills.importance, role_skills.weight)
                 IS DISTINCT FROM (EXCLUDED.importance, EXCLUDED.weight)""",
    ),
    (
        "role_dimensions",
        """INSERT INTO role_dimensions (role_id, dimension_id, importance, weight, source)
           SELECT DISTINCT ON (r.id, d.id) r.id, d.id, st.importance, st.weight, %(src)s FROM st_role_dimensions st
           JOIN roles r ON r.source = %(src)s AND r.source_id = st.role
           JOIN dimensions d ON d.source = %(src)s AND d.source_id = st.dimension
           ORDER BY r.id, d.id, st.weight DESC
           ON CONFLICT (role_id, dimension_id) DO UPDATE SET importance = EXCLUDED.importance,
               weight = EXCLUDED.weight
           WHERE (role_dimensions.importance, role_dimensions.weight)
                 IS DISTINCT FROM (EXCLUDED.importance, EXCLUDED.weight)""",
    ),
    (
        "skill_relations",
        """INSERT INTO skill_relations (skill_id, related_id, kind, source)
           SELECT DISTINCT s.id, o.id, st.kind, %(src)s FROM st_skill_relations st
           JOIN skills s ON s.source = %(src)s AND s.source_id = st.skill
           JOIN skills o ON o.source = %(src)s AND o.source_id = st.related
           ON CONFLICT DO NOTHING""",
    ),
]

# What a complete release no longer lists: skills and roles are retired (runs and reviews refer to them), the
# rest is deleted. Rows another source added (learned aliases, approved KRAs) are never touched.
_PRUNE: list[tuple[str, str]] = [
    (
        "skills",
        """UPDATE skills s SET status = 'retired', updated_at = now() WHERE s.source = %(src)s
           AND s.status <> 'retired' AND NOT EXISTS (SELECT 1 FROM st_skills st WHERE st.source_id = s.source_id)""",
    ),
    (
        "roles",
        """UPDATE roles r SET status = 'retired', updated_at = now() WHERE r.source = %(src)s
           AND r.status <> 'retired' AND NOT EXISTS (SELECT 1 FROM st_roles st WHERE st.source_id = r.source_id)""",
    ),
    (
        "skill_aliases",
        """DELETE FROM skill_aliases a USING skills s WHERE a.skill_id = s.id AND s.source = %(src)s
           AND a.source = %(src)s AND NOT EXISTS (SELECT 1 FROM st_skill_aliases st
               WHERE st.skill = s.source_id AND st.alias_norm = a.alias_norm)""",
    ),
    (
        "skill_dimensions",
        """DELETE FROM skill_dimensions sd USING skills s, dimensions d
           WHERE sd.skill_id = s.id AND sd.dimension_id = d.id AND sd.source = %(src)s
           AND NOT EXISTS (SELECT 1 FROM st_skill_dimensions st WHERE st.skill = s.source_id
                           AND st.dimension = d.source_id)""",
    ),
    (
        "role_aliases",
        """DELETE FROM role_aliases a USING roles r WHERE a.role_id = r.id AND r.source = %(src)s
           AND NOT EXISTS (SELECT 1 FROM st_role_aliases st WHERE st.role = r.source_id
                           AND st.alias_norm = a.alias_norm)""",
    ),
    (
        "role_kras",
        """DELETE FROM role_kras k USING roles r WHERE k.role_id = r.id AND r.source = %(src)s
           AND k.source = %(src)s AND NOT EXISTS (SELECT 1 FROM st_role_kras st WHERE st.role = r.source_id
                                                 AND st.text_norm = k.text_norm)""",
    ),
    (
        "role_skills",
        """DELETE FROM role_skills rs USING roles r, skills s
           WHERE rs.role_id = r.id AND rs.skill_id = s.id AND rs.source = %(src)s
           AND NOT EXISTS (SELECT 1 FROM st_role_skills st WHERE st.role = r.source_id AND st.skill = s.source_id)""",
    ),
    (
        "role_dimensions",
        """DELETE FROM role_dimensions rd USING roles r, dimensions d
           WHERE rd.role_id = r.id AND rd.dimension_id = d.id AND rd.source = %(src)s
           AND NOT EXISTS (SELECT 1 FROM st_role_dimensions st WHERE st.role = r.source_id
                           AND st.dimension = d.source_id)""",
    ),
    (
        "dimensions",
        """DELETE FROM dimensions d WHERE d.source = %(src)s
           AND NOT EXISTS (SELECT 1 FROM st_dimensions st WHERE st.source_id = d.source_id)""",
    ),
]


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


class CatalogWriter:
    """Applies import bundles to one catalog (one schema) and fills missing embeddings."""

    def __init__(self, db: Database, embeddings: ModelEmbeddings, *, progress: Progress | None = None) -> None:
        self.db = db
        self.embeddings = embeddings
        self.progress = progress or (lambda stage, done, total: None)
        self._status: _ProgressRow | None = None

    def _report(self, stage: str, done: int, total: int, percent: float) -> None:
        """Tell readers (the progress row, during :meth:`apply`) and the caller (``progress``)."""
        if self._status is not None:
            self._status.update(stage, percent)
        self.progress(stage, done, total)

    # -- import ---------------------------------------------------------------------------------------------------
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
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('jdgraph-catalog-write'))")
                pid = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()
                self._status = _ProgressRow(self.db, bundle.source, int(pid["pid"])) if pid else None
                self._stage(conn, bundle)
                src = {"src": bundle.source}
                for i, (name, sql) in enumerate(_MERGE):
                    changed = conn.execute(sql, src).rowcount
                    report.changed[name] = report.changed.get(name, 0) + max(changed, 0)
                    step = (_PERCENT_MERGED - _PERCENT_STAGED) * (i + 1) / len(_MERGE)
                    self._report(f"merged {name}", max(changed, 0), max(changed, 0), _PERCENT_STAGED + step)
                if complete:
                    for name, sql in _PRUNE:
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

    def _vacuum(self) -> None:
        """Fresh statistics and a clean visibility map for the tables an import rewrote, at once: left to
        autovacuum, the first minutes of lookups after a large import run beside it on a small machine, with
        plans made from stale statistics."""
        with self.db.connection() as conn:  # autocommit: VACUUM cannot run inside a transaction
            for table in _VACUUMED:
                conn.execute(f"VACUUM (ANALYZE) {table}")

    def _stage(self, conn: psycopg.Connection[Any], bundle: ImportBundle) -> None:
        for table, columns in _STAGES.items():
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
        for table, columns in _STAGE_INDEXES.items():
            conn.execute(f"CREATE INDEX ON {table} ({columns})")
        for table in _STAGES:
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
        staged = (list(_STAGES).index(table) + 1) / len(_STAGES)
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
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('jdgraph-catalog-write'))")
            n = self._embed_missing(conn)
            self._seed_centroids(conn)
        return n

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
