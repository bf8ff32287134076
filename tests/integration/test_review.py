"""The review workflow on a real catalog: runs only propose; approving applies (audited, idempotent, one change
under concurrent reviewers); a rejection sticks; a merge folds counts. Its own starter catalog (schema
``<test schema>_review``), so approvals never leak into the other tests' starter catalog."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from typer.testing import CliRunner

import jdgraph
from jdgraph.errors import InputError, NotFoundError, ReviewConflictError
from tests.rust_jd import BEEKEEPER_JD

pytestmark = pytest.mark.integration

TEMPORAL_JD = """Senior Backend Engineer
Acme Payments is hiring a Senior Backend Engineer in Berlin, Germany (hybrid).
Responsibilities:
- Design and build payment services in Python and PostgreSQL.
- Operate our {tool} workflows and Kafka pipelines in production.
- Mentor engineers and review code.
Requirements:
- 5+ years of backend development with Python, Django and PostgreSQL.
- Experience with {tool}, Kafka and Kubernetes.
"""


@pytest.fixture(scope="module")
def review_catalog(database, embeddings):  # type: ignore[no-untyped-def]
    from jdgraph.catalog.db import Database
    from jdgraph.catalog.registry import open_catalog
    from jdgraph.settings import DatabaseSettings

    db = Database(DatabaseSettings.from_env(schema=f"{database.settings.schema}_review"))
    cat = open_catalog("starter", db=db, embeddings=embeddings)
    yield cat
    db.close()


def _classify(cat: Any, text: str) -> Any:
    return jdgraph.classify(text, run_id=str(uuid.uuid4()), catalog_reader=cat)


def _pending(cat: Any, kind: str, key: str) -> Any:
    items = [i for i in cat.review.list(kind=kind, status=None) if i.key == key]
    assert len(items) == 1, f"{kind}:{key} should be one item, got {items}"
    return items[0]


def _catalog_content(cat: Any) -> dict[str, int]:
    with cat.db.connection() as conn:
        row = conn.execute(
            """SELECT (SELECT count(*) FROM skills) AS skills, (SELECT count(*) FROM skill_aliases) AS aliases,
                      (SELECT count(*) FROM roles) AS roles, (SELECT count(*) FROM role_kras) AS kras,
                      (SELECT count(*) FROM role_dimensions) AS role_dims,
                      (SELECT count(*) FROM role_skills) AS role_skills"""
        ).fetchone()
    return dict(row)


def test_runs_only_propose_and_an_approval_applies_once(review_catalog) -> None:
    cat = review_catalog
    before = _catalog_content(cat)
    first = _classify(cat, TEMPORAL_JD.format(tool="Temporal"))
    _classify(cat, TEMPORAL_JD.format(tool="Temporal") + "\nApply by email.")  # a second text: counted again
    assert any(q.kind == "new_skill" and q.key == "temporal" for q in first.queued)
    assert _catalog_content(cat) == before, "a run changed the catalog without an approval"

    item = _pending(cat, "new_skill", "temporal")
    assert item.status == "pending" and item.occurrences == 2
    shown = cat.review.get(item.id)
    assert {r["run_id"] for r in shown.runs} >= {first.run_id}
    assert shown.evidence and "Temporal" in shown.evidence

    outcome = cat.review.approve(item.id, reviewer="alice", role="backend-engineer")
    assert outcome.changed and outcome.changes["skill_created"] == "temporal"
    again = cat.review.approve(item.id, reviewer="bob")
    assert not again.changed and "already approved" in again.message

    after = _catalog_content(cat)
    assert after["skills"] == before["skills"] + 1 and after["aliases"] == before["aliases"] + 1
    assert after["role_skills"] == before["role_skills"] + 1
    match = cat.lookup_skill("Temporal", accept=None)
    assert match.skill is not None and match.skill.slug == "temporal" and match.skill.source == "review"
    with cat.db.connection() as conn:
        vec = conn.execute(
            "SELECT embedding IS NOT NULL AS a, (SELECT centroid IS NOT NULL FROM skills WHERE slug = 'temporal') AS c "
            "FROM skill_aliases WHERE alias = 'Temporal'"
        ).fetchone()
        audit = conn.execute(
            "SELECT action, reviewer, changes, run_ids::text[] AS runs FROM review_audit WHERE queue_id = %s",
            (item.id,),
        ).fetchall()
    assert vec["a"] and vec["c"], "an approved skill is searchable by embedding (alias vector and centroid)"
    assert len(audit) == 1 and audit[0]["action"] == "approve" and audit[0]["reviewer"] == "alice"
    assert first.run_id in audit[0]["runs"] and audit[0]["changes"]["skill_created"] == "temporal"

    # The next JD naming it finds it in the catalog and proposes nothing for it.
    later = _classify(cat, TEMPORAL_JD.format(tool="Temporal") + "\nVisa sponsorship available.")
    temporal = [s for s in later.skills if s.name == "Temporal"]
    assert temporal and temporal[0].tag != "new" and temporal[0].canonical_slug == "temporal"
    assert not any(q.kind == "new_skill" and q.key == "temporal" for q in later.queued)


def test_a_rejection_sticks_and_cannot_be_approved(review_catalog) -> None:
    cat = review_catalog
    _classify(cat, TEMPORAL_JD.format(tool="Windmill"))
    item = _pending(cat, "new_skill", "windmill")
    with pytest.raises(InputError):
        cat.review.reject(item.id, reviewer="alice", reason="  ")
    assert cat.review.reject(item.id, reviewer="alice", reason="not a skill").changed
    assert not cat.review.reject(item.id, reviewer="alice", reason="not a skill").changed
    with pytest.raises(ReviewConflictError):
        cat.review.approve(item.id, reviewer="bob")

    again = _classify(cat, TEMPORAL_JD.format(tool="Windmill") + "\nRelocation offered.")
    said = [p.outcome for p in again.persistence if p.item == "new_skill: windmill"]
    assert said == ["not re-queued: a reviewer rejected it"]
    assert cat.review.get(item.id).status == "rejected"
    assert not [i for i in cat.review.list(kind="new_skill") if i.key == "windmill"]


def test_two_reviewers_approving_at_once_make_one_change(review_catalog) -> None:
    cat = review_catalog
    _classify(cat, TEMPORAL_JD.format(tool="Dagster"))
    item = _pending(cat, "new_skill", "dagster")
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda who: cat.review.approve(item.id, reviewer=who), ["a", "b", "c", "d"]))
    assert sum(o.changed for o in outcomes) == 1
    with cat.db.connection() as conn:
        n = conn.execute("SELECT count(*) AS n FROM skills WHERE display_name = 'Dagster'").fetchone()["n"]
        audits = conn.execute("SELECT count(*) AS n FROM review_audit WHERE queue_id = %s", (item.id,)).fetchone()
    assert n == 1 and audits["n"] == 1


def test_merge_folds_a_duplicate_and_later_runs_count_there(review_catalog) -> None:
    cat = review_catalog
    _classify(cat, TEMPORAL_JD.format(tool="Airbyte"))
    _classify(cat, TEMPORAL_JD.format(tool="AirByte Cloud"))
    dup, target = _pending(cat, "new_skill", "airbytecloud"), _pending(cat, "new_skill", "airbyte")
    outcome = cat.review.merge(dup.id, target.id, reviewer="carol")
    assert outcome.changed and cat.review.get(dup.id).status == "merged"
    assert cat.review.get(target.id).occurrences == 2
    assert not cat.review.merge(dup.id, target.id, reviewer="carol").changed
    _classify(cat, TEMPORAL_JD.format(tool="AirByte Cloud") + "\nFull-time.")
    assert cat.review.get(target.id).occurrences == 3
    kra = cat.review.list(kind="new_kra")[0]
    with pytest.raises(ReviewConflictError):
        cat.review.merge(kra.id, target.id, reviewer="carol")
    with pytest.raises(NotFoundError):
        cat.review.approve(10**9, reviewer="carol")


def test_approving_a_kra_a_role_and_an_alias_of_an_existing_skill(review_catalog) -> None:
    cat = review_catalog
    _classify(cat, TEMPORAL_JD.format(tool="Prefect"))
    kra = next(i for i in cat.review.list(kind="new_kra") if "payment services" in i.key)
    assert cat.review.approve(kra.id, reviewer="dan").changed
    assert any("payment services" in k.text for k in cat.role_kras(kra.payload["role"]))

    prefect = _pending(cat, "new_skill", "prefect")
    cat.review.approve(prefect.id, reviewer="dan", as_alias_of="apache-kafka", rename="Prefect workflows")
    match = cat.lookup_skill("Prefect workflows", accept=None)
    assert match.skill is not None and match.skill.slug == "apache-kafka"

    beekeeper = BEEKEEPER_JD
    result = _classify(cat, beekeeper)
    assert result.decision.is_new_role, result.decision
    assert [q.key for q in result.queued if q.kind == "new_role"] == ["beekeeper"], (result.queued, result.persistence)
    role_item = _pending(cat, "new_role", "beekeeper")
    done = cat.review.approve(role_item.id, reviewer="dan")
    assert done.changes["role_created"] == "beekeeper"
    again = _classify(cat, beekeeper + "\nSeasonal contract.")
    assert again.decision.chosen_role.slug == "beekeeper"


def test_review_cli_lists_shows_and_decides(review_catalog) -> None:
    from jdgraph.cli import app

    cat = review_catalog  # the CLI opens the same schema as catalog "review" (<base>_review)
    _classify(cat, TEMPORAL_JD.format(tool="Argo Events"))
    runner = CliRunner()

    def review(*args: str, **kw: Any) -> Any:
        return runner.invoke(app, ["review", args[0], "--catalog", "review", *args[1:]], **kw)

    listed = review("list", "--kind", "new_skill", "--json")
    assert listed.exit_code == 0, listed.output
    items = {i["key"]: i for i in json.loads(listed.stdout)}
    argo = items["argoevents"]
    assert argo["status"] == "pending" and argo["label"] == "Argo Events"

    shown = review("show", str(argo["id"]))
    assert shown.exit_code == 0 and "Argo Events" in shown.stdout and "proposed by runs" in shown.stdout
    text = review("list", env={"COLUMNS": "80"})
    assert text.exit_code == 0 and "Argo Events" in text.stdout and "pending:" in text.stdout

    assert review("reject", str(argo["id"])).exit_code == 2  # --reason is required
    approved = review("approve", str(argo["id"]), "--reviewer", "erin", "--json")
    assert approved.exit_code == 0 and json.loads(approved.stdout)["changed"] is True
    rejected = review("reject", str(argo["id"]), "--reason", "late")
    assert rejected.exit_code == 7 and "approved" in rejected.output
    assert review("show", "999999999").exit_code == 5
    assert review("list", "--status", "bogus").exit_code == 2
    help_text = review("list", "--help", env={"COLUMNS": "100"}).stdout
    assert "<bool>" not in help_text
