"""ESCO and O*NET imports on the real published files in ../shared (a fixed slice into the database; the whole
files are parsed and counted without embedding). Skipped with a message where ../shared is absent."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest

from jdgraph.catalog.embeddings import ModelEmbeddings
from jdgraph.catalog.importers.base import split_labels
from jdgraph.catalog.importers.esco import EscoImporter
from jdgraph.catalog.importers.onet import OnetImporter, product_alias
from jdgraph.catalog.normalize import normalize_alias
from jdgraph.catalog.registry import open_catalog
from jdgraph.catalog.writer import CatalogWriter
from jdgraph.errors import CatalogDataError, EmbeddingError
from jdgraph.settings import shared_dir
from tests.rust_jd import RUST_JD

pytestmark = pytest.mark.integration
ESCO = shared_dir() / "data" / "esco-v1.1.1"
ONET = shared_dir() / "data" / "onet-27.0"
ESCO_SLICE = ["25"]  # ISCO 25: ICT professionals (69 occupations, 747 skills)
ONET_SLICE = ["15-12"]  # computer occupations

needs_esco = pytest.mark.skipif(not ESCO.is_dir(), reason=f"ESCO files not found at {ESCO} (set JDGRAPH_SHARED)")
needs_onet = pytest.mark.skipif(not ONET.is_dir(), reason=f"O*NET files not found at {ONET} (set JDGRAPH_SHARED)")


def _esco_csv(name: str) -> list[dict[str, str]]:
    for archive in sorted(ESCO.glob("*.zip")):
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                if member.rsplit("/", 1)[-1] == name:
                    return list(csv.DictReader(io.TextIOWrapper(zf.open(member), encoding="utf-8-sig")))
    raise FileNotFoundError(name)


@pytest.fixture(scope="module")
def esco(database, embeddings):  # type: ignore[no-untyped-def]
    if not ESCO.is_dir():
        pytest.skip(f"ESCO files not found at {ESCO}")
    catalog = open_catalog("esco", embeddings=embeddings, require_content=False)
    report = CatalogWriter(catalog.db, catalog.embeddings).apply(
        EscoImporter(ESCO, only=ESCO_SLICE).bundle(), complete=False
    )
    return catalog, report


@needs_esco
def test_full_esco_files_give_every_occupation_skill_alias_and_relation() -> None:
    bundle = EscoImporter(ESCO).bundle()
    roles, skills, links = list(bundle.roles), list(bundle.skills), list(bundle.role_skills)
    assert (len(roles), len(skills)) == (3007, 13896)
    # 123,855 relation rows; 67 of them name the one occupation URI that occupations_en.csv does not define,
    # which the import reports instead of linking to nothing.
    assert len(links) == 123855 - 67
    assert len(bundle.notes) == 1 and bundle.notes[0].startswith("67 occupation–skill relation(s)")
    alt = {r["conceptUri"]: split_labels(r["altLabels"]) for r in _esco_csv("skills_en.csv")}
    for skill in skills:
        names = {normalize_alias(a.text) for a in skill.aliases}
        assert {normalize_alias(a) for a in alt[skill.source_id]} <= names, skill.source_id
    assert all(s.source_id.startswith("http://data.europa.eu/esco/skill/") for s in skills)
    assert len({r.slug for r in roles}) == 3007 and len({s.slug for s in skills}) == 13896


@needs_esco
def test_esco_slice_lands_with_links_uris_codes_and_vectors(esco) -> None:
    catalog, report = esco
    occupations = [r for r in _esco_csv("occupations_en.csv") if r["iscoGroup"].startswith(tuple(ESCO_SLICE))]
    uris = {r["conceptUri"] for r in occupations}
    relations = [r for r in _esco_csv("occupationSkillRelations.csv") if r["occupationUri"] in uris]
    stats = catalog.stats()
    assert stats.roles == len(occupations) and stats.role_skill_links == len(relations)
    assert stats.sources == {"esco": "ESCO v1.1.1"}
    with catalog.db.connection() as conn:
        role = conn.execute(
            "SELECT id, code, source_id, domain FROM roles WHERE slug = 'software-developer'"
        ).fetchone()
        aliases = {r["alias_norm"] for r in conn.execute("SELECT alias_norm FROM role_aliases WHERE role_id = %s",
                                                         (role["id"],))}  # fmt: skip
        essential = conn.execute("SELECT count(*) AS n FROM role_skills WHERE importance = 'essential'").fetchone()["n"]
        missing = conn.execute("SELECT count(*) AS n FROM skill_aliases WHERE embedding IS NULL").fetchone()["n"]
    occ = next(r for r in occupations if r["preferredLabel"] == "software developer")
    assert role["source_id"] == occ["conceptUri"] and role["code"] == occ["code"]
    assert role["domain"] == "Information and communications technology professionals"
    assert {normalize_alias(a) for a in split_labels(occ["altLabels"])} <= aliases
    assert essential == sum(r["relationType"] == "essential" for r in relations)
    assert missing == 0 and report.embedded > 0


@needs_esco
def test_esco_reimport_is_a_no_op_that_embeds_nothing(esco) -> None:
    catalog, _ = esco
    before = catalog.stats()
    writer = CatalogWriter(catalog.db, catalog.embeddings)
    same = writer.apply(EscoImporter(ESCO, only=ESCO_SLICE).bundle(), complete=False)
    forced = writer.apply(EscoImporter(ESCO, only=ESCO_SLICE).bundle(), force=True, complete=False)
    assert same.skipped
    assert (forced.total_changed, forced.embedded) == (0, 0), forced
    assert catalog.stats() == before


@needs_esco
def test_classify_on_esco_gives_a_developer_occupation_with_esco_uris(esco) -> None:
    import jdgraph

    _catalog, _ = esco
    result = jdgraph.classify(RUST_JD, run_id=str(uuid.uuid4()), catalog="esco", persist=False)
    choice = result.decision.chosen_role
    assert choice.slug in {"software-developer", "ict-application-developer", "ict-system-developer"}, choice
    assert choice.source_id and choice.source_id.startswith("http://data.europa.eu/esco/occupation/")
    canonical = [s for s in result.skills if s.canonical_slug]
    assert canonical and all(s.source_id.startswith("http://data.europa.eu/esco/skill/") for s in canonical)
    assert all(s.source_id for s in result.role_signals)


def _truncated_esco(tmp_path: Path) -> Path:
    folder = tmp_path / "esco"
    folder.mkdir()
    for archive in ESCO.glob("*.zip"):
        shutil.copy(archive, folder / archive.name)
    # The occupations file cut off inside a quoted field, as a failed download leaves it.
    with zipfile.ZipFile(next(folder.glob("*- en - csv.zip"))) as zf:
        text = zf.read("occupations_en.csv").decode("utf-8-sig")
    (folder / "occupations_en.csv").write_text(text[: len(text) // 2], encoding="utf-8")
    return folder


@needs_esco
def test_truncated_file_is_a_clear_error_and_writes_nothing(tmp_path: Path, embeddings) -> None:
    folder = _truncated_esco(tmp_path)
    with pytest.raises(CatalogDataError, match=r"occupations_en\.csv:\d+: ") as err:
        EscoImporter(folder).bundle()
    assert err.value.line and err.value.line > 1
    catalog = open_catalog("broken", embeddings=embeddings, require_content=False)
    assert catalog.is_empty()
    out = subprocess.run(
        [sys.executable, "-m", "jdgraph.cli", "catalog", "import", "esco", str(folder), "--catalog", "broken"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 5, out.stderr
    message = out.stderr.replace("\n", "")  # rich wraps the line at the terminal's width
    assert "occupations_en.csv:" in message and "Traceback" not in message
    assert catalog.is_empty()


class _FailsOnCall(ModelEmbeddings):
    """The real model, failing on its n-th call (a crash or a full disk in the middle of an import)."""

    def __init__(self, inner: ModelEmbeddings, fail_on: int) -> None:
        self.inner, self.model_id, self.fail_on, self.calls = inner, inner.model_id, fail_on, 0

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed_array(self, texts):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls == self.fail_on:
            raise EmbeddingError("injected failure")
        return self.inner.embed_array(texts)


@needs_esco
def test_failed_import_leaves_nothing_and_its_retry_embeds_only_the_rest(embeddings) -> None:
    flaky = _FailsOnCall(embeddings, fail_on=2)  # skill aliases embed, then role aliases fail
    catalog = open_catalog("flaky", embeddings=flaky, require_content=False)
    bundle = EscoImporter(ESCO, only=["2512"]).bundle
    with pytest.raises(EmbeddingError):
        CatalogWriter(catalog.db, catalog.embeddings).apply(bundle(), complete=False)
    assert catalog.is_empty()  # rolled back whole
    computed_before = catalog.embeddings.stats["computed"]
    report = CatalogWriter(catalog.db, catalog.embeddings).apply(bundle(), complete=False)
    recomputed = catalog.embeddings.stats["computed"] - computed_before
    assert not catalog.is_empty() and report.embedded > recomputed > 0  # the cached half was not embedded again


def test_missing_column_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "Occupation Data.txt").write_text("O*NET-SOC Code\tName\n11-1011.00\tChief Executives\n")
    for name in ("Alternate Titles", "Sample of Reported Titles", "Task Statements", "Technology Skills"):
        (tmp_path / f"{name}.txt").write_text("O*NET-SOC Code\n")
    with pytest.raises(CatalogDataError, match=r"Occupation Data\.txt:1: missing column"):
        OnetImporter(tmp_path).bundle()


@needs_onet
def test_full_onet_files_give_every_occupation_title_and_task() -> None:
    def lines(name: str) -> int:
        return sum(1 for line in (ONET / name).read_text(encoding="utf-8").splitlines()[1:] if line.strip())

    bundle = OnetImporter(ONET).bundle()
    roles = list(bundle.roles)
    assert len(roles) == lines("Occupation Data.txt")
    assert sum(len(r.kras) for r in roles) == lines("Task Statements.txt")
    titles = sum(len(r.aliases) for r in roles)
    assert titles >= lines("Alternate Titles.txt") + lines("Sample of Reported Titles.txt")


@needs_onet
def test_onet_slice_imports_roles_tasks_and_technology(database, embeddings) -> None:
    catalog = open_catalog("onet", embeddings=embeddings, require_content=False)
    CatalogWriter(catalog.db, catalog.embeddings).apply(OnetImporter(ONET, only=ONET_SLICE).bundle(), complete=False)
    with catalog.db.connection() as conn:
        dev = conn.execute(
            "SELECT id, code, domain FROM roles WHERE source_id = '15-1252.00'"
        ).fetchone()  # Software Developers
        kinds = {r["kind"] for r in conn.execute("SELECT DISTINCT kind FROM role_kras")}
        hot = conn.execute(
            """SELECT s.attributes->>'hot_technology' AS hot FROM role_skills rs JOIN skills s ON s.id = rs.skill_id
               WHERE rs.role_id = %s AND s.display_name = 'Python'""",
            (dev["id"],),
        ).fetchone()
    assert dev["code"] == "15-1252.00" and dev["domain"] == "Computer and Mathematical"
    assert kinds == {"core", "supplemental", None}  # Software Developers' tasks have no type ("n/a") in 27.0
    assert hot is not None and hot["hot"] == "true"
    match = catalog.lookup_skill("Excel", accept=None)
    assert match.skill is not None and match.skill.display_name == "Microsoft Excel"


@pytest.mark.parametrize(
    ("example", "alias"),
    [
        ("Adobe Systems Adobe Acrobat", "Adobe Acrobat"),
        ("Microsoft Excel", "Excel"),
        ("Python", None),
        ("Oracle Java", "Java"),
    ],
)
def test_product_alias_drops_the_vendor(example: str, alias: str | None) -> None:
    assert product_alias(example) == alias
