"""``jdgraph batch run``: a bulk job over the real embedded PostgreSQL, in this process and as a Ray Data job on a
local Ray. Bad lines are error lines and the rest run; a second run (after a crash, or on the other engine) saves
nothing twice and reads saved items back; an unreachable database or a connection budget the server cannot hold
is refused before any work starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jdgraph.bulk import BulkPlan, check_budget, run_local
from jdgraph.errors import ConfigError
from tests.rust_jd import RUST_JD

pytestmark = pytest.mark.integration

SHORT_JD = "Line Cook\nWe are hiring a line cook. Requirements:\n- 2 years of kitchen experience\n- food safety"


def _cli(catalog: Any, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JDGRAPH_DB_SCHEMA": catalog.db.schema, "COLUMNS": "100", **(env or {})}
    return subprocess.run([sys.executable, "-m", "jdgraph.cli", *args], capture_output=True, text=True, env=env,
                          timeout=900)  # fmt: skip


def _input(path: Path, ids: list[str]) -> Path:
    lines = [
        json.dumps({"id": ids[0], "text": RUST_JD}),
        "not json at all",
        json.dumps({"id": ids[1], "text": SHORT_JD, "title": "Line Cook"}),
        json.dumps({"id": "no-text"}),
    ]
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")  # a blank line is no line
    return path


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_a_local_bulk_job_reports_bad_lines_and_a_rerun_saves_nothing_twice(catalog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = _input(tmp_path / "in.jsonl", ["bulk-local-1", "bulk-local-2"])
    first = _cli(catalog, "batch", "run", str(source), str(tmp_path / "out.jsonl"), "--engine", "local")
    assert first.returncode == 1, first.stderr  # two lines failed, and said so
    out = _lines(tmp_path / "out.jsonl")
    assert [x.get("id") for x in out] == ["bulk-local-1", None, "bulk-local-2", "no-text"]
    assert "is not JSON" in out[1]["error"] and out[1]["input"] == "not json at all"
    assert "missing 'text'" in out[3]["error"]
    assert all("result" in out[i] and "done_before" not in out[i] for i in (0, 2))
    assert "4 lines" in first.stderr and "2 classified" in first.stderr and "2 failed" in first.stderr
    run_ids = {out[i]["result"]["run_id"] for i in (0, 2)}

    again = _cli(catalog, "batch", "run", str(source), str(tmp_path / "out.parquet"), "--engine", "local")
    assert again.returncode == 1 and "2 saved before" in again.stderr, again.stderr
    import pyarrow.parquet as pq

    table = pq.read_table(str(tmp_path / "out.parquet")).to_pylist()
    saved = [row for row in table if row["result"]]
    assert [row["done_before"] for row in saved] == ["saved", "saved"]
    assert {json.loads(row["result"])["run_id"] for row in saved} == run_ids
    with catalog.db.connection() as conn:
        count = conn.execute("SELECT count(*) AS n FROM runs WHERE run_id::text = ANY(%s)", (list(run_ids),)).fetchone()
    assert count["n"] == 2


def test_a_ray_job_classifies_new_lines_and_reads_saved_ones_back(catalog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("ray.data")
    source = _input(tmp_path / "in.jsonl", ["bulk-ray-1", "bulk-ray-2"])
    # The first line saved before, by a job in this process: the Ray job must read it back, not run it.
    seeded = tmp_path / "seed.jsonl"
    seeded.write_text(source.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    assert run_local(seeded, tmp_path / "seed-out.jsonl", BulkPlan(threads=1), {}).done == 1
    done = _cli(catalog, "batch", "run", str(source), str(tmp_path / "out.jsonl"), "--engine", "ray",
                "--actors", "1", "--pool-size", "2", "--batch-size", "2")  # fmt: skip
    assert done.returncode == 1, done.stderr[-3000:]
    by_id = {x.get("id") or x.get("input"): x for x in _lines(tmp_path / "out.jsonl")}
    assert set(by_id) == {"bulk-ray-1", "not json at all", "bulk-ray-2", "no-text"}  # every line once
    assert by_id["bulk-ray-1"]["done_before"] == "saved"
    assert by_id["bulk-ray-2"]["result"]["decision"]["chosen_role"] and "done_before" not in by_id["bulk-ray-2"]
    assert by_id["not json at all"]["error"] == "this line is not JSON (Expecting value)"
    assert "1 classified" in done.stderr and "saved before" in done.stderr, done.stderr[-2000:]
    assert not list(tmp_path.glob(".*.partial"))  # written beside the output and renamed


def test_an_unreachable_database_is_refused_before_any_work(catalog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = _input(tmp_path / "in.jsonl", ["x1", "x2"])
    env = {"DATABASE_URL": "postgresql://bob:hunter2@127.0.0.1:1/catalog"}
    done = _cli(catalog, "batch", "run", str(source), str(tmp_path / "out.jsonl"), "--engine", "ray", env=env)
    assert done.returncode == 3 and "127.0.0.1:1/catalog" in done.stderr and "hunter2" not in done.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_more_connections_than_the_server_allows_are_refused_with_both_numbers() -> None:
    check_budget(BulkPlan(actors=4, pool_size=5), 100, 10)  # 4 × (5 + 4 for checkpoints) = 36
    with pytest.raises(ConfigError, match=r"8 actors × \(a pool of 8 \+ 4 for checkpoints\) = 96 connections.*"
                       r"allows 100 and 10 are in use"):  # fmt: skip
        check_budget(BulkPlan(actors=8, pool_size=8), 100, 10)
