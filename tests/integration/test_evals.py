"""The evaluation harness end to end: the starter suite against its committed baseline (the CI gate), a
worsened threshold failing it with a readable diff, reports, compare, and record/replay of LLM calls."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from jdgraph.evals.goldens import load_suite, resolve_suite
from jdgraph.evals.runner import Baseline, compare_runs, gate_failures, run_suite, write_json
from tests.stub_openai import StubOpenAI

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
STARTER = resolve_suite("starter", ROOT)
BASELINE = ROOT / "evals" / "baselines" / "starter.deterministic.json"


@pytest.fixture(scope="module")
def starter_run(catalog):  # type: ignore[no-untyped-def]
    return run_suite(load_suite(STARTER), concurrency=2)


def test_goldens_validate_and_name_only_catalog_slugs() -> None:
    suite = load_suite(STARTER)
    assert len(suite.cases) >= 40
    starter = ROOT / "src" / "jdgraph" / "catalog" / "starter"
    from jdgraph.catalog.normalize import slugify

    dims = yaml.safe_load((starter / "skills.yaml").read_text())["dimensions"]
    skills = {s.get("slug") or slugify(s["name"]) for d in dims for s in d["skills"] if isinstance(s, dict)}
    roles = {r["slug"] for r in yaml.safe_load((starter / "roles.yaml").read_text())["roles"]}
    for case in suite.cases:
        assert {s.slug for s in case.expected.skills} <= skills, case.id
        assert {r for r in [case.expected.role, *case.expected.role_alternates] if r} <= roles, case.id
    routes = {c.expected.route for c in suite.cases}
    assert routes == {"direct", "adjudicated", "new-role", "rejected"}
    tags = {t for c in suite.cases for t in c.tags}
    assert {"html", "injection", "collision", "not-a-jd", "unknown-skills", "long", "salary"} <= tags


def test_ci_gate_starter_suite_matches_its_baseline(starter_run) -> None:  # type: ignore[no-untyped-def]
    failures = gate_failures(starter_run, Baseline.load(BASELINE))
    assert failures == [], "\n".join(failures)
    assert starter_run.totals["errors"] == 0 and starter_run.totals["llm_calls"] == 0


def test_a_worsened_threshold_fails_the_gate_with_the_flipped_cases(catalog) -> None:  # type: ignore[no-untyped-def]
    suite = load_suite(STARTER)
    worse = run_suite(suite, concurrency=2, new_role_threshold=0.9)  # every role now looks "new"
    failures = gate_failures(worse, Baseline.load(BASELINE))
    text = "\n".join(failures)
    assert "route_accuracy regressed" in text and "vs baseline 1.000 (tolerance 0.020)" in text
    assert "    ux-designer: 1.00 -> 0.00  (expected direct, got new-role)" in text
    assert "nurse-icu" not in text  # its title is word for word its role's: never a new role, whatever the threshold
    assert "new-role-beekeeper" not in text  # cases that were right and stay right are not listed


def test_reports_and_compare(starter_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from jdgraph.evals.reports import comparison_markdown, html_report, markdown_report

    md = markdown_report(starter_run, Baseline.load(BASELINE), [])
    assert "| role_top1 | 1.000 | 0.85 | 1.000 | +0.000 |" in md and "Gate\n\nPASS" in md
    page = html_report(starter_run, None, ["x regressed"])
    assert page.startswith("<!doctype html>") and "<svg" in page and "<script" not in page and "x regressed" in page
    cmp = compare_runs(starter_run, starter_run)
    assert all(d.delta == 0 and d.ci_low == 0 and d.ci_high == 0 for d in cmp.metrics.values())
    assert cmp.flipped == [] and "Flipped cases" in comparison_markdown(cmp, "a", "b")


def test_eval_cli_writes_reports_and_gates(catalog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    small = tmp_path / "mini.v1.jsonl"
    lines = STARTER.read_text(encoding="utf-8").splitlines()
    small.write_text("\n".join(line for line in lines if '"id": "nurse-icu"' in line or '"not-a-jd-recipe"' in line))
    env = {**__import__("os").environ, "JDGRAPH_DB_SCHEMA": catalog.db.schema}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jdgraph.cli", "eval", *args], capture_output=True, text=True, env=env, timeout=300
        )

    ok = cli("run", str(small), "--out", str(tmp_path / "a"))
    assert ok.returncode == 0, ok.stderr
    assert {p.name for p in (tmp_path / "a").iterdir()} == {"results.json", "report.md", "report.html"}
    bad = cli("run", str(small), "--out", str(tmp_path / "b"), "--set", "collision_margin=1.0")  # all contested
    assert bad.returncode == 1 and "route_accuracy 0.500 is below its threshold 0.850" in bad.stderr
    cmp = cli("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json")
    assert cmp.returncode == 0, cmp.stderr
    data = json.loads(cmp.stdout)
    assert data["metrics"]["route_accuracy"]["delta"] == -0.5 and data["flipped"][0]["id"] == "nurse-icu"
    skipped = cli("run", "hahu-dev")
    assert skipped.returncode == 0 and "needs ESCO occupations" in skipped.stderr
    invalid = tmp_path / "bad.v1.jsonl"
    invalid.write_text(
        '{"id": "x", "text": "t", "expected": {"role": "chef", "route": "rejected"}}\n{oops\n'
        '{"id": "y", "text": "t", "expected": {"role": null, "route": "rejected"}}\n'
        '{"id": "y", "text": "t", "expected": {"role": null, "route": "rejected"}}\n'
    )
    out = cli("validate", str(invalid))
    assert out.returncode == 2 and "bad.v1.jsonl:1:" in out.stderr
    assert "bad.v1.jsonl:2: not JSON" in out.stderr and "bad.v1.jsonl:4: duplicate id 'y'" in out.stderr


PARSED = {
    "jd_type": "pass",
    "reject_reason": None,
    "role": "Registered Nurse",
    "role_aliases": [],
    "role_archetype": None,
    "company_name": None,
    "about_company": None,
    "experience": {"min": 2, "max": None, "raw": "2+ years"},
    "job_locations": [{"country": "United States", "iso_code": "US", "city": None, "state": None, "work_mode": None}],
    "domain": None,
    "education": [],
    "certifications": [],
    "salary": None,
    "roles_and_responsibilities": [],
    "urls": [],
}


def test_record_then_replay_through_the_client_and_report_unrecorded_prompts(
    catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    suite = load_suite(STARTER)
    suite.cases = [c for c in suite.cases if c.id in ("nurse-icu", "teacher-maths")]
    cassette = tmp_path / "cassette.jsonl"
    stub = StubOpenAI()
    stub.script = [{"status": 429}]  # an error first: passed through and retried, never recorded
    stub.default = {"json": PARSED}
    monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    try:
        recorded = run_suite(suite, mode="record", cassette=cassette, parse_model="openai:gpt-4.1-mini", concurrency=1)
    finally:
        stub.close()
    entries = [json.loads(line) for line in cassette.read_text().splitlines()]
    assert len(entries) == 2 and all("choices" in e["response"] for e in entries)
    assert all(e["key"].startswith("gpt-4.1-mini|parse@") and e["key"].endswith("|0") for e in entries)
    # Replay: the upstream is gone; answers come from the cassette through ChatOpenAI.
    replayed = run_suite(suite, mode="replay", cassette=cassette, parse_model="openai:gpt-4.1-mini", concurrency=2)
    assert replayed.unrecorded == {} and not any("no recording" in f for f in gate_failures(replayed))
    again = run_suite(suite, mode="replay", cassette=cassette, parse_model="openai:gpt-4.1-mini")
    baseline = Baseline.from_run(replayed)
    assert baseline.cassette == str(cassette) and baseline.mode == "replay"
    assert not any("regressed" in f or "no recording" in f for f in gate_failures(again, baseline))
    assert set(replayed.cost_by_node) == {"parse"} and replayed.cost_by_node["parse"] > 0
    for a, b in zip(recorded.cases, replayed.cases, strict=True):
        assert a.output and b.output and a.output.parse == b.output.parse and a.output.skills == b.output.skills
        assert [c["outcome"] for c in b.output.llm_calls] == ["ok"]
    # A prompt edit without a new recording is reported, never answered by the deterministic parser.
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    source = (ROOT / "src" / "jdgraph" / "prompts" / "parse.md").read_text()
    (prompts / "parse.md").write_text(source.replace("You ", "You carefully ", 1))
    edited = run_suite(
        suite, mode="replay", cassette=cassette, parse_model="openai:gpt-4.1-mini", prompts_dir=str(prompts)
    )
    version = edited.config.prompt_versions["parse"]
    assert edited.unrecorded == {f"parse@{version}": 2}
    assert (
        gate_failures(edited)[0] == f"parse@{version} has no recording for 2 cases; re-record with a model (--record)"
    )
    write_json(edited, tmp_path / "edited.json")  # the report of such a run still serialises


def test_deepeval_test_run_scores_the_goldens_offline(catalog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import os

    env = {
        **os.environ,
        "JDGRAPH_DB_SCHEMA": catalog.db.schema,
        "JDGRAPH_EVAL_CASES": "rust-systems-remote,not-a-jd-recipe,collision-software-engineer",
        "DEEPEVAL_TELEMETRY_OPT_OUT": "1",
        "DEEPEVAL_DISABLE_DOTENV": "1",
    }
    out = subprocess.run(
        [str(Path(sys.executable).parent / "deepeval"), "test", "run", str(ROOT / "evals" / "test_starter.py")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "3 passed" in out.stdout and "role_top1" in out.stdout and "skill_f1" in out.stdout


def test_repeat_reports_pass_rates_and_spread(catalog) -> None:  # type: ignore[no-untyped-def]
    from jdgraph.evals.reports import markdown_report

    suite = load_suite(STARTER)
    suite.cases = [c for c in suite.cases if c.id in ("nurse-icu", "engineering-manager")]
    run = run_suite(suite, repeat=3, concurrency=2)
    assert len(run.cases) == 6 and sorted({c.repeat for c in run.cases}) == [0, 1, 2]
    assert all(len(m.per_repeat) == 3 and m.std == 0.0 for m in run.metrics.values())  # the rules are deterministic
    assert set(run.pass_rates) == {"nurse-icu", "engineering-manager"}
    assert all(rate in (0.0, 1.0) for rate in run.pass_rates.values())
    md = markdown_report(run)
    assert "## Pass rate per case" in md and "(sd 0.000)" in md


def test_llm_judge_scores_adjudicated_reasoning_only_when_configured(catalog, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from jdgraph.evals.reports import markdown_report

    suite = load_suite(STARTER)
    suite.cases = [c for c in suite.cases if c.id in ("collision-software-engineer", "nurse-icu")]
    assert run_suite(suite).judge_metrics == {}  # no judge configured: no judge metric, no call
    stub = StubOpenAI()
    stub.default = {"json": {"score": 8, "reason": "Cites Spring Boot and REST APIs from the JD."}}
    monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    try:
        run = run_suite(suite, judge="openai:judge-model")
    finally:
        stub.close()
    judged = {c.id: c.judge_scores for c in run.cases}
    assert judged["nurse-icu"] == {}  # decided directly: nothing to judge
    assert judged["collision-software-engineer"]["adjudication_reasoning"].score == pytest.approx(0.8)
    assert len(stub.requests) == 1 and stub.requests[0]["model"] == "judge-model"
    assert "Chosen role: backend-engineer" in stub.requests[0]["messages"][-1]["content"]
    assert run.judge_metrics == {"adjudication_reasoning": 0.8}
    assert "adjudication_reasoning: 0.800" in markdown_report(run)


@pytest.fixture(scope="module")
def replay_catalog(catalog, embeddings):  # type: ignore[no-untyped-def]
    """A starter catalog of its own (catalog name "replay"), as fresh as the one a recording is made on: runs
    persisted by other tests move role centroids, which would change what the adjudication prompt shows (and so
    its recording's key)."""
    from jdgraph.catalog.db import Database
    from jdgraph.catalog.registry import open_catalog
    from jdgraph.settings import DatabaseSettings

    db = Database(DatabaseSettings.from_env(schema=f"{catalog.db.settings.schema}_replay"))
    open_catalog("starter", db=db, embeddings=embeddings)
    db.close()
    return "replay"


REPLAY_BASELINES = sorted(p for p in (ROOT / "evals" / "baselines").glob("*.json") if Baseline.load(p).mode == "replay")


@pytest.mark.parametrize("baseline_path", REPLAY_BASELINES or [None], ids=lambda p: p.stem if p else "none")
def test_ci_gate_llm_path_replays_committed_cassettes(replay_catalog, baseline_path: Path | None) -> None:  # type: ignore[no-untyped-def]
    """The LLM path's gate: every committed replay baseline is re-measured from its cassette, offline."""
    if baseline_path is None:
        pytest.skip(
            "no LLM-path cassette is committed: recording one needs a live model "
            "(jdgraph eval run starter --model M --record --cassette evals/cassettes/starter.M.jsonl, then "
            "jdgraph eval baseline starter --model M --replay --cassette …)"
        )
    baseline = Baseline.load(baseline_path)
    assert baseline.cassette, f"{baseline_path} names no cassette"
    run = run_suite(
        load_suite(resolve_suite(baseline.suite, ROOT)),
        mode="replay",
        cassette=ROOT / baseline.cassette,
        catalog="replay",
        **{k: v for k, v in baseline.models.items()},
    )
    assert run.totals["llm_calls"] > 0 and run.recorded_prompts
    failures = gate_failures(run, baseline)
    assert failures == [], "\n".join(failures)


def test_an_edited_prompt_without_a_recording_fails_the_replay_gate(replay_catalog, tmp_path: Path) -> None:
    import shutil

    import jdgraph.prompts

    if not REPLAY_BASELINES:
        pytest.skip("no replay baseline committed")
    baseline = Baseline.load(REPLAY_BASELINES[0])
    prompts = tmp_path / "prompts"
    shutil.copytree(
        Path(jdgraph.prompts.__file__).parent, prompts, ignore=shutil.ignore_patterns("*.py", "__pycache__")
    )
    parse = prompts / "parse.md"
    parse.write_text(parse.read_text(encoding="utf-8").replace("precise parser", "careful parser"), encoding="utf-8")
    suite = load_suite(resolve_suite(baseline.suite, ROOT))
    suite.cases = suite.cases[:3]
    run = run_suite(
        suite,
        mode="replay",
        cassette=ROOT / str(baseline.cassette),
        prompts_dir=str(prompts),
        catalog=replay_catalog,
        **baseline.models,
    )
    failures = gate_failures(run, baseline)
    assert any(f.startswith("parse@") and "has no recording for 3 cases" in f for f in failures), failures


def test_gate_and_runner_refuse_what_they_cannot_judge(starter_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from jdgraph.errors import ConfigError, InputError

    stale = Baseline.load(BASELINE).model_copy(update={"suite_sha256": "0" * 64})
    assert "another version of suite starter" in gate_failures(starter_run, stale)[0]
    suite = load_suite(STARTER)
    with pytest.raises(ConfigError, match="needs --model"):
        run_suite(suite, mode="replay", cassette=tmp_path / "c.jsonl")
    with pytest.raises(ConfigError, match="needs a cassette"):
        run_suite(suite, mode="replay", parse_model="openai:gpt-4.1-mini")
    with pytest.raises(ConfigError, match=r"cannot build model 'openai:gpt-4\.1-mini'"):
        run_suite(suite, parse_model="openai:gpt-4.1-mini")  # no key: one clear error, not 49 failed cases
    with pytest.raises(InputError, match="does not exist"):
        Baseline.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(InputError, match="is not valid"):
        Baseline.load(tmp_path / "bad.json")
