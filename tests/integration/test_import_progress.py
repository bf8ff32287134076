"""An ESCO import says how far it is: a line per stage where stderr is no terminal, and to readers of the catalog
while it runs (``db status`` answers at once; ``classify`` on a catalog whose first import has not committed says
"being imported, N% done"; a re-import keeps the old release serving). The import is held mid-way by its own
progress callback, in a thread of the test process; the readers are the CLI in subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from jdgraph.catalog import writer as writer_module
from jdgraph.catalog.db import advisory_key
from jdgraph.catalog.importers.esco import EscoImporter
from jdgraph.catalog.registry import open_catalog
from jdgraph.catalog.writer import CatalogWriter
from jdgraph.settings import shared_dir

pytestmark = pytest.mark.integration
ESCO = shared_dir() / "data" / "esco-v1.1.1"
ROOT = Path(__file__).resolve().parents[2]
JD = ROOT / "examples" / "rust-developer.txt"
# A reader's whole process (it loads the embedding model; a classify took 100 s on a loaded 2-core machine); the
# held import waits 15 minutes, so a reader that waits for it fails here.
READER_BOUND_S = 300

needs_esco = pytest.mark.skipif(not ESCO.is_dir(), reason=f"ESCO files not found at {ESCO} (set JDGRAPH_SHARED)")


def cli(*args: str, timeout: float = READER_BOUND_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jdgraph.cli", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


@contextmanager
def import_held_at(name: str, only: str, stage: str, embeddings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """An import of the ESCO slice ``only`` into catalog ``name``, held at the start of ``stage`` (inside its
    transaction) for the body of the ``with``, then let go and finished."""
    reached, release = threading.Event(), threading.Event()
    failed: list[BaseException] = []

    def progress(at: str, done: int, total: int) -> None:
        if at == stage and not reached.is_set():
            reached.set()
            release.wait(900)

    def run() -> None:
        try:
            catalog = open_catalog(name, embeddings=embeddings, require_content=False)
            CatalogWriter(catalog.db, catalog.embeddings, progress=progress).apply(
                EscoImporter(ESCO, only=[only]).bundle(), complete=False
            )
        except BaseException as exc:
            failed.append(exc)
            reached.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert reached.wait(600) and not failed, failed
        yield
    finally:
        release.set()
        thread.join(600)
    assert not failed, failed


@needs_esco
def test_an_import_without_a_terminal_prints_a_line_per_stage_with_counts(database) -> None:
    name = f"lines_{uuid.uuid4().hex[:6]}"
    out = cli("catalog", "import", "esco", str(ESCO), "--only", "2512", "--catalog", name, timeout=900)
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    for expected in (
        "reading esco files",
        "staged skills: ",
        "staged role_aliases: ",
        "merged skills",
        "embedding skill_aliases: ",
        "wrote vectors of skill_aliases: ",
        "seeded centroids",
        "vacuum and analyze",
    ):
        assert any(expected in line for line in lines), f"no line with {expected!r} in:\n{out.stderr}"
    assert all(line.startswith("[") for line in lines), out.stderr  # plain lines, no bar drawn into the pipe
    assert "imported ESCO" in out.stdout


@needs_esco
def test_readers_of_a_first_import_are_told_it_is_being_imported_and_how_far(
    database, embeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every table's index rebuilt, as in a whole-ESCO import: held while skill_aliases has no index, its lock held.
    monkeypatch.setattr(writer_module, "_REBUILD_INDEX_AT", 1)
    name = f"first_{uuid.uuid4().hex[:6]}"
    with import_held_at(name, "2512", "indexing skill_aliases", embeddings):
        status = cli("db", "status", "--catalog", name, "--json")
        assert status.returncode == 0, status.stderr
        running = json.loads(status.stdout)["import_in_progress"]
        assert running["source"] == "esco" and running["stage"] == "indexing skill_aliases"
        assert 50 < running["percent"] < 100
        text_status = cli("db", "status", "--catalog", name)
        assert text_status.returncode == 0 and "being imported" in text_status.stdout, text_status.stderr
        classified = cli("classify", str(JD), "--catalog", name, "--no-persist")
        assert classified.returncode == 5, classified.stderr
        message = classified.stderr.replace("\n", "")
        assert "is being imported" in message and "% done" in message and "empty" not in message
    assert not open_catalog(name, embeddings=embeddings).is_empty()
    after = json.loads(cli("db", "status", "--catalog", name, "--json").stdout)
    assert after["import_in_progress"] is None and after["row_counts"]["skills"] > 0


@needs_esco
def test_a_reimport_keeps_the_old_release_serving(database, embeddings, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"again_{uuid.uuid4().hex[:6]}"
    catalog = open_catalog(name, embeddings=embeddings, require_content=False)
    CatalogWriter(catalog.db, catalog.embeddings).apply(EscoImporter(ESCO, only=["2512"]).bundle(), complete=False)
    before = json.loads(cli("db", "status", "--catalog", name, "--json").stdout)["row_counts"]
    # Another slice, held once its rows are merged (uncommitted) and its vectors are being computed: skill_aliases'
    # are computed by then, and with every index rebuilt (as for a new release) none may be dropped yet.
    monkeypatch.setattr(writer_module, "_REBUILD_INDEX_AT", 1)
    with import_held_at(name, "2511", "embedding role_aliases", embeddings):
        status = cli("db", "status", "--catalog", name, "--json")
        assert status.returncode == 0, status.stderr
        during = json.loads(status.stdout)
        assert during["import_in_progress"]["stage"] == "embedding role_aliases"
        # The committed release, not the import's rows (the embedding cache commits on its own, by design).
        assert {k: v for k, v in during["row_counts"].items() if k != "embedding_cache"} == {
            k: v for k, v in before.items() if k != "embedding_cache"
        }
        classified = cli("classify", str(JD), "--catalog", name, "--no-persist", "--json")
        assert classified.returncode == 0, classified.stderr
        assert json.loads(classified.stdout)["decision"]["chosen_role"] is not None
    after = json.loads(cli("db", "status", "--catalog", name, "--json").stdout)["row_counts"]
    assert after["roles"] > before["roles"]


@needs_esco
def test_an_import_holds_only_its_own_catalogs_writers(database, embeddings, catalog) -> None:
    """The writers' lock is one per catalog schema: while an import into one catalog is in its transaction, the
    same catalog's write lock is taken, and another catalog's writer (here filling missing vectors of the session
    catalog) takes its own lock and finishes instead of waiting for the import."""
    name = f"locks_{uuid.uuid4().hex[:6]}"
    importing = open_catalog(name, embeddings=embeddings, require_content=False)
    with import_held_at(name, "2512", "embedding role_aliases", embeddings):
        with database.connection() as conn, conn.transaction():
            held = conn.execute(
                "SELECT pg_try_advisory_xact_lock(%s) AS got", (advisory_key("catalog-write", importing.db.schema),)
            ).fetchone()
            free = conn.execute(
                "SELECT pg_try_advisory_xact_lock(%s) AS got", (advisory_key("catalog-write", catalog.db.schema),)
            ).fetchone()
        assert held is not None and held["got"] is False  # the import holds its catalog's lock
        assert free is not None and free["got"] is True  # nobody holds the session catalog's
        done: list[int] = []
        other = threading.Thread(
            target=lambda: done.append(CatalogWriter(catalog.db, catalog.embeddings).embed_missing())
        )
        other.start()
        other.join(120)
        assert len(done) == 1, "a write to another catalog waited for the import"
