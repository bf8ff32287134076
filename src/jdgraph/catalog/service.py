"""The catalog's public operations, as the command line and the web page use them: open a catalog by name,
migrate it, report its status and repair it, import a taxonomy, count it, prune checkpoints, read runs and decide
review items. Thin functions over the catalog's own modules: the face calls these and never the database layer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from jdgraph.catalog.checkpoints import checkpoint_health
from jdgraph.catalog.checkpoints import prune_checkpoints as _prune_checkpoints
from jdgraph.catalog.db import Database
from jdgraph.catalog.import_progress import Progress, import_in_progress
from jdgraph.catalog.importers.esco import EscoImporter
from jdgraph.catalog.importers.onet import OnetImporter
from jdgraph.catalog.importers.starter import StarterImporter
from jdgraph.catalog.importers.titles import read_title_examples
from jdgraph.catalog.migrations import MigrationReport, schema_version
from jdgraph.catalog.migrations import migrate as _migrate
from jdgraph.catalog.models import CatalogStats
from jdgraph.catalog.queries import Catalog
from jdgraph.catalog.registry import (
    catalog_schema,
    default_catalog_name,
    forget_catalogs,
    get_catalog,
    open_catalog,
    shared_embeddings,
)
from jdgraph.catalog.review import ReviewStore
from jdgraph.catalog.runs import ALREADY_PERSISTED
from jdgraph.catalog.writer import CatalogWriter, ImportReport
from jdgraph.errors import CatalogError, DatabaseLockTimeoutError, InputError
from jdgraph.settings import CHECKPOINT_TTL_DAYS, DatabaseSettings

STATUS_LOCK_TIMEOUT_S = 2.0
"""How long `db status` waits for a table lock before it reports an import in progress instead of counts."""


def catalog(name: str | None = None, *, progress: Progress | None = None) -> Catalog:
    """The process's open catalog ``name`` (default: ``JDGRAPH_CATALOG``, else starter), opened once per process;
    ``progress`` hears of each stage of opening it the first time (building the starter catalog)."""
    return get_catalog(name or default_catalog_name(), progress=progress)


def load_embedding_model() -> None:
    """Load the embedding model the catalog opens with (one per process), so a caller can say it is doing so."""
    shared_embeddings()


def _database(name: str | None, **kwargs: Any) -> Database:
    return Database(DatabaseSettings.from_env(schema=catalog_schema(name or default_catalog_name())), **kwargs)


@dataclass(frozen=True)
class Migrated:
    schema: str
    display_url: str
    report: MigrationReport


def migrate(name: str | None = None) -> Migrated:
    """Apply the catalog's pending schema migrations (a no-op when up to date)."""
    db = _database(name)
    embedder = shared_embeddings()
    report = _migrate(db, embedding_model=embedder.model_id, embedding_dim=embedder.dimension)
    return Migrated(db.schema, db.display_url, report)


@dataclass(frozen=True)
class Reembedded:
    catalog: str
    schema: str
    previous_model: str | None
    model: str
    texts: int
    observed_centroids_reset: int
    seconds: float


def reembed(name: str | None = None, *, progress: Progress | None = None) -> Reembedded:
    """Re-embed catalog ``name`` with the configured model (after an upgrade changed the default encoder, or to
    switch models in place): every vector replaced in one transaction, the model recorded. Reviewed aliases,
    runs and the queue are kept; see :meth:`CatalogWriter.reembed` for the observed role centroids."""
    name = name or default_catalog_name()
    db = _database(name)
    embedder = shared_embeddings()
    _migrate(db, embedding_model=embedder.model_id, embedding_dim=embedder.dimension, check_model=False)
    catalog = Catalog(db, embedder, name=name)
    if catalog.is_empty():
        raise CatalogError(f"catalog {name!r} is empty: nothing to re-embed (jdgraph catalog import|init)")
    started = time.monotonic()
    previous, texts, reset = CatalogWriter(db, catalog.embeddings, progress=progress).reembed()
    return Reembedded(name, db.schema, previous, embedder.model_id, texts, reset, time.monotonic() - started)


def status(name: str | None = None, *, repair: bool = False) -> dict[str, Any]:
    """Which server is in use, the schema version, row counts and the catalog's health (texts without a vector;
    ``repair`` embeds them), its checkpoints, and an import in progress if one is."""
    name = name or default_catalog_name()
    # An import rebuilding an index holds its table until it commits: status says so rather than wait for it.
    db = _database(name, lock_timeout_s=STATUS_LOCK_TIMEOUT_S)
    info = db.server_info()
    version = schema_version(db)
    running = import_in_progress(db) if version else None
    counts: dict[str, int] = {}
    missing: dict[str, int] = {}
    writer = CatalogWriter(db, shared_embeddings())
    try:
        counts = Catalog(db, shared_embeddings(), name=name).row_counts() if version else {}
        missing = writer.missing_vectors_by_table() if version else {}
    except DatabaseLockTimeoutError:
        if running is None:
            raise
    without_vector: int = sum(missing.values())
    repaired = writer.embed_missing() if repair and without_vector > 0 and running is None else 0
    if repaired:
        missing = writer.missing_vectors_by_table()
        without_vector = sum(missing.values())
    health = "ok" if without_vector == 0 else "texts without a vector: run jdgraph db status --repair"
    if running is not None:
        # Counts are the last committed release's (none while a first import runs; none while a table is locked).
        health = f"being imported ({running.describe()})" + ("" if counts else "; row counts when it finishes")
    checkpoints = checkpoint_health(db, CHECKPOINT_TTL_DAYS) if version else {}
    return {
        "server": info.url,
        "embedded": info.embedded,
        "postgres_version": info.version,
        "catalog": name,
        "schema": db.schema,
        "schema_version": version,
        "row_counts": counts,
        "missing_vectors": missing,
        "repaired": repaired,
        "health": health,
        "checkpoints": checkpoints,
        "import_in_progress": None
        if running is None
        else {"source": running.source, "stage": running.stage, "percent": running.percent},
    }


def prune_checkpoints(name: str | None = None, older_than_days: float = CHECKPOINT_TTL_DAYS) -> dict[str, int]:
    """Delete checkpoints nothing will resume: of finished runs, and of unfinished runs idle for longer than
    ``older_than_days``. Returns how many threads of each were pruned."""
    return _prune_checkpoints(_database(name), older_than_days)


@dataclass(frozen=True)
class ImportOutcome:
    name: str
    version: str
    report: ImportReport
    stats: CatalogStats


def import_taxonomy(
    source: Literal["starter", "esco", "onet", "titles"],
    path: Path | None = None,
    *,
    name: str | None = None,
    only: Sequence[str] = (),
    force: bool = False,
    progress: Progress | None = None,
) -> ImportOutcome:
    """Import ``source``'s files at ``path`` (the starter catalog needs none) into catalog ``name`` (default: one
    named after the source). Re-importing the same files changes nothing; a slice (``only``: ISCO or O*NET-SOC
    code prefixes) never removes what it does not cover."""
    if source == "titles":
        if path is None:
            raise InputError("importing titles needs the path of a title,occupation_uri CSV")
        return import_title_examples(path, name=name or "esco", force=force, progress=progress)
    if source == "starter":
        importer: Any = StarterImporter()
    elif path is None:
        raise InputError(f"importing {source} needs the path of its files (a folder, or ESCO's zip)")
    else:
        importer = (EscoImporter if source == "esco" else OnetImporter)(path, only=tuple(only))
    name = name or source
    report_progress = progress or (lambda stage, done, total: None)
    opened = open_catalog(name, require_content=False, progress=progress)
    report_progress(f"reading {importer.source} files", 0, 0)
    bundle = importer.bundle()
    report = CatalogWriter(opened.db, opened.embeddings, progress=progress).apply(
        bundle, force=force, complete=not only
    )
    forget_catalogs()
    return ImportOutcome(name, bundle.version, report, opened.stats())


def import_title_examples(
    path: Path, *, name: str = "esco", force: bool = False, progress: Progress | None = None
) -> ImportOutcome:
    """Replace catalog ``name``'s title examples from the CSV at ``path`` with those of this file, and embed them
    (``jdgraph catalog import titles PATH``): each votes for its occupation when a JD's title is near it."""
    source, examples, content_hash = read_title_examples(path)
    opened = open_catalog(name, require_content=True, progress=progress)
    (progress or (lambda stage, done, total: None))(f"read {len(examples):,} titles from {path.name}", 0, 0)
    report = CatalogWriter(opened.db, opened.embeddings, progress=progress).import_title_examples(
        source, examples, content_hash=content_hash, force=force
    )
    forget_catalogs()
    return ImportOutcome(name, report.version, report, opened.stats())


def stats(opened: Catalog) -> CatalogStats:
    """Counts of skills, aliases, dimensions, roles, KRAs, links, reviews and runs."""
    return opened.stats()


def persisted_before(persistence_outcome: str) -> bool:
    """Whether a run's first persistence outcome says the store found it saved before (a rerun)."""
    return persistence_outcome == ALREADY_PERSISTED


# -- runs ------------------------------------------------------------------------------------------------------
def list_runs(opened: Catalog, limit: int) -> list[dict[str, Any]]:
    """The most recent runs, newest first."""
    return opened.runs.list_runs(limit)


def run_record(opened: Catalog, run_id_or_prefix: str) -> tuple[str, dict[str, Any] | None]:
    """A run's id (its prefix resolved: NotFoundError or an ambiguity InputError) and its stored record."""
    key = opened.runs.resolve_run_id(run_id_or_prefix)
    return key, opened.runs.run_record(key)


# -- review ----------------------------------------------------------------------------------------------------
def review_queue(opened: Catalog) -> ReviewStore:
    """The catalog's review queue: ``list``, ``counts``, ``get``, and the audited decisions ``approve``,
    ``reject`` and ``merge`` (the command line and the web page decide through it)."""
    return opened.review
