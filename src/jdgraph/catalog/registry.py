"""Catalogs by name: each lives in its own PostgreSQL schema of the same database.

``starter`` (the default) is the schema ``JDGRAPH_DB_SCHEMA`` (``jdgraph``); any other name N is the schema
``<JDGRAPH_DB_SCHEMA>_N`` (``jdgraph_esco``, ``jdgraph_onet``). A schema per catalog keeps each catalog's HNSW
indexes to its own rows (a filter on a shared table would be applied after the index scan and return too few
neighbours), lets an import lock, rebuild and roll back one catalog without touching another, and keeps runs and
review items with the catalog whose ids they refer to. Opened catalogs are kept per process, one per name, and
share one embedding model instance.
"""

from __future__ import annotations

import atexit
import re
import threading

from jdgraph.catalog.db import Database
from jdgraph.catalog.embeddings import ModelEmbeddings, make_embeddings
from jdgraph.catalog.import_progress import Progress, import_in_progress
from jdgraph.catalog.importers.starter import StarterImporter
from jdgraph.catalog.migrations import migrate
from jdgraph.catalog.queries import Catalog
from jdgraph.catalog.writer import CatalogWriter
from jdgraph.errors import CatalogError, CatalogImportInProgressError, ConfigError
from jdgraph.settings import DatabaseSettings, EmbeddingSettings, env_value

DEFAULT_CATALOG = "starter"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
_lock = threading.RLock()
_open: dict[tuple[str, str, str | None], Catalog] = {}
_models: dict[EmbeddingSettings, ModelEmbeddings] = {}


def default_catalog_name() -> str:
    return env_value("JDGRAPH_CATALOG") or DEFAULT_CATALOG


def catalog_schema(name: str, base: str | None = None) -> str:
    """The schema that holds catalog ``name``."""
    if not _NAME.match(name):
        raise ConfigError(
            f"catalog name {name!r} is not valid (lower-case letters, digits and _, starting with a letter)",
            setting="JDGRAPH_CATALOG",
        )
    base = base or DatabaseSettings.from_env().schema
    return base if name == DEFAULT_CATALOG else f"{base}_{name}"


def shared_embeddings(settings: EmbeddingSettings | None = None) -> ModelEmbeddings:
    """One instance of the configured embedding model per process (its weights load once)."""
    settings = settings or EmbeddingSettings.from_env()
    with _lock:
        if settings not in _models:
            _models[settings] = make_embeddings(settings)
        return _models[settings]


def open_catalog(
    name: str = DEFAULT_CATALOG,
    *,
    db: Database | None = None,
    embeddings: ModelEmbeddings | None = None,
    progress: Progress | None = None,
    require_content: bool = True,
) -> Catalog:
    """Migrate the catalog's schema and return it ready: the starter catalog is loaded (or brought up to date)
    on open; another catalog must have been imported (``jdgraph catalog import``), unless ``require_content`` is
    False (the importer opens an empty one). Texts left without a vector are embedded (a repair)."""
    db = db or Database(DatabaseSettings.from_env(schema=catalog_schema(name)))
    inner = embeddings or shared_embeddings()
    migrate(db, embedding_model=inner.model_id, embedding_dim=inner.dimension)
    catalog = Catalog(db, inner, name=name)
    writer = CatalogWriter(db, catalog.embeddings, progress=progress)
    if name == DEFAULT_CATALOG:
        # Skipped only when the files are unchanged and no vector is missing; otherwise it embeds what is.
        writer.apply(StarterImporter().bundle())
    else:
        if require_content and catalog.is_empty():
            running = import_in_progress(db)
            if running is not None:
                raise CatalogImportInProgressError(
                    f"catalog {name!r} is being imported ({running.describe()}): it can be used when the import "
                    "finishes",
                    catalog=name,
                    stage=running.stage,
                    percent=running.percent,
                )
            raise CatalogError(
                f"catalog {name!r} is empty: import a taxonomy into it first "
                f"(jdgraph catalog import esco|onet PATH --catalog {name})"
            )
        if writer.missing_vectors():
            writer.embed_missing()
    return catalog


def get_catalog(name: str | None = None, *, progress: Progress | None = None) -> Catalog:
    """The process's open catalog ``name`` (default: ``JDGRAPH_CATALOG`` or ``starter``), opened on first use
    (``progress`` then hears of each stage of building it)."""
    name = name or default_catalog_name()
    settings = DatabaseSettings.from_env(schema=catalog_schema(name))
    key = (name, settings.schema, settings.url)
    with _lock:
        catalog = _open.get(key)
        if catalog is None:
            catalog = open_catalog(name, db=Database(settings), progress=progress)
            _open[key] = catalog
        return catalog


def use_catalog(catalog: Catalog) -> None:
    """Make an already open catalog the process's catalog of its name (tests, services with their own pool)."""
    settings = catalog.db.settings
    with _lock:
        _open[(catalog.name, settings.schema, settings.url)] = catalog


def forget_catalogs() -> None:
    """Close every open catalog's pool and forget it (tests, services that reconfigure)."""
    with _lock:
        for catalog in _open.values():
            catalog.db.close()
        _open.clear()


atexit.register(forget_catalogs)
