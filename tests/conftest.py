"""Shared fixtures: one real embedded PostgreSQL (pgvector) per test session, one schema per run, and one
instance of the bundled embedding model."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import hypothesis  # noqa: F401
import pytest

# hypothesis is imported here, at collection, on purpose: otherwise its pytest plugin imports it lazily at the
# end of a session that ran no hypothesis test, and pytest's assertion rewriting of it can hit CPython 3.11.7's
# "AST constructor recursion depth mismatch" SystemError, failing a run whose tests all passed.

os.environ.setdefault("DEEPEVAL_TELEMETRY_OPT_OUT", "1")
os.environ.setdefault("LANGSMITH_TRACING", "false")
os.environ.pop("OPENAI_API_KEY", None)
os.environ.pop("JDGRAPH_MODEL", None)


@pytest.fixture(scope="session")
def open_tmp_root() -> Iterator[Path]:
    """A temp folder others may traverse (not list), for homes of embedded servers. pytest's own are 0700, and a
    server started as root runs as an account of its own that could not enter them (its data would then go to
    /var/lib/jdgraph, outliving the test)."""
    root = Path(tempfile.mkdtemp(prefix="jdgraph-tests-"))
    root.chmod(0o711)
    accounts_before = _server_accounts()
    yield root
    # As root, each test home got a system account of its own for its server: stop this process's servers (else
    # they stop only at exit, and an account in use cannot be removed), then remove the accounts this session made.
    from jdgraph.catalog.embedded import release_embedded_servers

    release_embedded_servers()
    shutil.rmtree(root, ignore_errors=True)
    for name in _server_accounts() - accounts_before:
        subprocess.run(["userdel", name], capture_output=True, check=False)


def _server_accounts() -> set[str]:
    import pwd

    return {p.pw_name for p in pwd.getpwall() if p.pw_name.startswith("jdgraph-")}


@pytest.fixture
def open_tmp(open_tmp_root: Path) -> Path:
    """A fresh folder in :func:`open_tmp_root`, for one test's embedded-server homes."""
    path = Path(tempfile.mkdtemp(dir=open_tmp_root))
    path.chmod(0o711)
    return path


@pytest.fixture(scope="session")
def jdgraph_home(open_tmp_root: Path) -> Path:
    """A private JDGRAPH_HOME so tests never touch a developer's catalog. DATABASE_URL, if set, is honoured."""
    home = Path(os.environ.get("JDGRAPH_TEST_HOME") or open_tmp_root / "jdgraph-home")
    os.environ["JDGRAPH_HOME"] = str(home)
    return home


@pytest.fixture(scope="session")
def embeddings():  # type: ignore[no-untyped-def]
    from jdgraph.catalog.registry import shared_embeddings

    return shared_embeddings()


@pytest.fixture(scope="session")
def database(jdgraph_home: Path) -> Iterator[object]:
    """The starter catalog's database: schema test_<random>. Other catalogs a test opens by name live in
    test_<random>_<name> (JDGRAPH_DB_SCHEMA is the base), and are dropped with it."""
    from jdgraph.catalog.db import Database
    from jdgraph.catalog.registry import forget_catalogs
    from jdgraph.settings import DatabaseSettings

    schema = f"test_{uuid.uuid4().hex[:10]}"
    os.environ["JDGRAPH_DB_SCHEMA"] = schema
    db = Database(DatabaseSettings.from_env(schema=schema))
    yield db
    forget_catalogs()
    db.drop_schema(including_prefixed=True)
    db.close()


@pytest.fixture(scope="session")
def catalog(database, embeddings):  # type: ignore[no-untyped-def]
    from jdgraph.catalog.registry import open_catalog, use_catalog

    cat = open_catalog("starter", db=database, embeddings=embeddings)
    use_catalog(cat)
    return cat


@pytest.fixture(scope="session")
def span_tagger():  # type: ignore[no-untyped-def]
    """The tagger the package ships, loaded once: a graph invoked directly takes it in its context, as
    jdgraph.api's runs do."""
    from jdgraph.trained.registry import get_span_tagger

    return get_span_tagger("shipped")
