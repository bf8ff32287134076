"""Fault injection (issue 12): processes killed mid-batch, between nodes and inside persist's transaction; a
database connection dropped during persist; a run id reused for another text. After each, the work is resumed or
rerun and the database is checked row by row: nothing lost, nothing counted twice."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

import jdgraph
from jdgraph.errors import InputError


def _jd(tag: str, n: int = 0) -> str:
    """A real-looking JD whose text is unique to the test (so counts in the shared catalog are the test's own),
    naming an unknown skill so each run proposes something."""
    return (
        f"Registered Nurse ({tag}-{n})\nResponsibilities:\n- Administer medication and monitor patient vital signs\n"
        f"- Maintain accurate patient records in Qorvex{tag.capitalize()}Chart\n"
        "Requirements:\n- Current RN license\n- 2+ years of ward experience\n"
    )


def _env(catalog: Any) -> dict[str, str]:
    return {**os.environ, "JDGRAPH_DB_SCHEMA": catalog.db.schema, "COLUMNS": "80"}


def _rows(catalog: Any, query: str, *params: Any) -> list[dict[str, Any]]:
    with catalog.db.connection() as conn:
        return conn.execute(query, params).fetchall()


def _counts_for(catalog: Any, run_ids: list[str]) -> dict[str, int]:
    """Rows the runs left, table by table (each must be there once per run)."""
    ids = list(run_ids)
    return {
        "runs": _rows(catalog, "SELECT count(*) AS n FROM runs WHERE run_id = ANY(%s::uuid[])", ids)[0]["n"],
        "with_result": _rows(
            catalog, "SELECT count(*) AS n FROM runs WHERE run_id = ANY(%s::uuid[]) AND result IS NOT NULL", ids
        )[0]["n"],
        "queue_links": _rows(
            catalog, "SELECT count(*) AS n FROM review_queue_runs WHERE run_id = ANY(%s::uuid[])", ids
        )[0]["n"],
        "centroid_links": _rows(
            catalog, "SELECT count(*) AS n FROM role_centroid_runs WHERE run_id = ANY(%s::uuid[])", ids
        )[0]["n"],
    }


def test_a_killed_batch_run_again_writes_nothing_twice_and_resume_skips_what_is_saved(catalog, tmp_path) -> None:
    tag = uuid.uuid4().hex[:8]
    lines = [{"id": f"jd-{i}", "text": _jd(tag, i)} for i in range(6)]
    batch = tmp_path / "batch.jsonl"
    batch.write_text("".join(json.dumps(x) + "\n" for x in lines))
    cmd = [sys.executable, "-m", "jdgraph.cli", "classify", "--batch", str(batch), "--concurrency", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env(catalog))
    assert proc.stdout is not None
    printed = [proc.stdout.readline() for _ in range(2)]
    os.kill(proc.pid, signal.SIGKILL)  # kill -9 mid-batch: no cleanup of any kind
    proc.wait(timeout=30)
    assert all(json.loads(p).get("result") for p in printed)

    again = subprocess.run(cmd, capture_output=True, text=True, env=_env(catalog), timeout=300)
    assert again.returncode == 0, again.stderr
    out = [json.loads(x) for x in again.stdout.splitlines()]
    assert [o["id"] for o in out] == [x["id"] for x in lines]
    assert all(o["result"]["input_id"] == o["id"] for o in out)  # runs carry the batch line's id
    before = [o for o in out if o.get("done_before") == "persisted"]
    assert len(before) >= 2  # those printed before the kill (and any saved after) were reported, not redone
    assert "were saved before (run again, nothing written twice)" in again.stderr
    run_ids = [o["result"]["run_id"] for o in out]
    assert len(set(run_ids)) == len(lines)
    counts = _counts_for(catalog, run_ids)
    assert counts["runs"] == counts["with_result"] == len(lines)
    queued_per_run = {o["result"]["run_id"]: sum(1 for q in o["result"]["queued"]) for o in out}
    assert counts["queue_links"] == sum(queued_per_run.values())  # each proposal counted once per run
    stored_ids = {
        r["input_id"] for r in _rows(catalog, "SELECT input_id FROM runs WHERE run_id = ANY(%s::uuid[])", run_ids)
    }
    assert stored_ids == {x["id"] for x in lines}

    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, env=_env(catalog), timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    outs = [json.loads(x) for x in resumed.stdout.splitlines()]
    assert {o["done_before"] for o in outs} == {"saved"} and "6 of 6 lines were saved before" in resumed.stderr
    assert [o["result"]["run_id"] for o in outs] == run_ids
    assert _counts_for(catalog, run_ids) == counts  # nothing written by the resumed batch


_EXIT_INSIDE_PERSIST = """
import os, sys
from jdgraph.catalog.runs import RunStore
def die(self, conn, run, role_id):  # inside save_run's transaction, after the run row and the queue rows
    os._exit(17)
RunStore._update_centroid = die
import jdgraph
jdgraph.classify(open(sys.argv[1]).read(), run_id=sys.argv[2])
"""

_EXIT_BETWEEN_NODES = """
import os, sys
import jdgraph.graph.nodes as nodes
real_match = nodes.match
def match_then_die(state, runtime):
    out = real_match(state, runtime)
    os._exit(18)  # after match ran, before its checkpoint or decide
nodes.match = match_then_die
import jdgraph
from jdgraph.context import Context
jdgraph.classify(open(sys.argv[1]).read(), run_id=sys.argv[2])
"""


@pytest.mark.parametrize(
    ("script", "code"), [(_EXIT_INSIDE_PERSIST, 17), (_EXIT_BETWEEN_NODES, 18)], ids=["inside persist", "after match"]
)
def test_a_run_killed_mid_way_resumes_and_is_saved_exactly_once(catalog, tmp_path, script: str, code: int) -> None:
    tag = uuid.uuid4().hex[:8]
    jd = tmp_path / "jd.txt"
    jd.write_text(_jd(tag))
    run_id = str(uuid.uuid4())
    died = subprocess.run(
        [sys.executable, "-c", script, str(jd), run_id], capture_output=True, text=True, env=_env(catalog), timeout=300
    )
    assert died.returncode == code, died.stderr
    assert _counts_for(catalog, [run_id])["runs"] == 0  # the transaction died with the process: nothing half-saved
    result = jdgraph.resume(run_id)
    assert result.status == "completed" and result.run_id == run_id
    assert result.persistence[0].outcome == "saved"
    counts = _counts_for(catalog, [run_id])
    assert counts == {
        "runs": 1,
        "with_result": 1,
        "queue_links": len(result.queued),
        "centroid_links": 1 if result.decision.confirmed_role else 0,
    }
    again = jdgraph.classify(jd.read_text(), run_id=run_id)  # and once more, by the same id: a no-op write
    assert again.persistence[0].outcome == "skipped: run already persisted"
    assert _counts_for(catalog, [run_id]) == counts
    with pytest.raises(jdgraph.errors.NotFoundError):  # type: ignore[attr-defined]
        jdgraph.resume(run_id)  # finished: nothing left to resume


def test_a_connection_dropped_during_persist_loses_nothing_and_a_retry_saves_once(catalog, monkeypatch) -> None:
    from jdgraph.catalog.runs import RunStore
    from jdgraph.errors import DatabaseError

    real = RunStore._update_centroid

    def drop_connection(self: RunStore, conn: Any, run: Any, role_id: Any) -> Any:
        conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")  # the server ends this session mid-transaction
        return real(self, conn, run, role_id)

    monkeypatch.setattr(RunStore, "_update_centroid", drop_connection)
    run_id = str(uuid.uuid4())
    text = _jd(uuid.uuid4().hex[:8])
    with pytest.raises(DatabaseError, match="connection"):
        jdgraph.classify(text, run_id=run_id)
    assert _counts_for(catalog, [run_id])["runs"] == 0
    monkeypatch.setattr(RunStore, "_update_centroid", real)
    result = jdgraph.resume(run_id)  # the failed run kept its checkpoints
    assert result.persistence[0].outcome == "saved"
    assert _counts_for(catalog, [run_id])["runs"] == 1


def test_a_run_id_reused_for_another_text_is_refused(catalog) -> None:
    run_id = str(uuid.uuid4())
    first = jdgraph.classify(_jd(uuid.uuid4().hex[:8]), run_id=run_id)
    assert first.persistence[0].outcome == "saved"
    with pytest.raises(InputError, match="already used for another text"):
        jdgraph.classify(_jd(uuid.uuid4().hex[:8]), run_id=run_id)
    stored = _rows(catalog, "SELECT result FROM runs WHERE run_id = %s", run_id)[0]["result"]
    assert stored["parsed"] == first.model_dump(mode="json")["parsed"]  # the first run is what is kept


def test_resume_of_an_unknown_or_malformed_run_id_is_a_clear_error(catalog) -> None:
    with pytest.raises(jdgraph.errors.NotFoundError):  # type: ignore[attr-defined]
        jdgraph.resume(str(uuid.uuid4()))
    with pytest.raises(InputError, match="not a UUID"):
        jdgraph.resume("not-a-uuid")


def test_batch_lines_with_the_same_id_are_refused_line_by_line(catalog, tmp_path: Path) -> None:
    batch = tmp_path / "dup.jsonl"
    tag = uuid.uuid4().hex[:8]
    batch.write_text(json.dumps({"id": "a", "text": _jd(tag, 1)}) + "\n" + json.dumps({"id": "a", "text": _jd(tag, 2)}))
    out = subprocess.run(
        [sys.executable, "-m", "jdgraph.cli", "classify", "--batch", str(batch), "--no-persist"],
        capture_output=True,
        text=True,
        env=_env(catalog),
        timeout=300,
    )
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert out.returncode == 1 and "result" in lines[0]
    assert lines[1] == {"line": 2, "error": "line 2: id 'a' is also the id of line 1"}


def test_a_full_disk_for_the_output_is_a_clear_error_and_resume_prints_what_was_saved(catalog, tmp_path) -> None:
    """Output to a full disk (/dev/full answers every write with ENOSPC) used to end in a traceback after the runs
    were saved; now one line says so, and --resume prints the saved results without running them again."""
    batch = tmp_path / "batch.jsonl"
    batch.write_text(json.dumps({"id": "full-1", "text": _jd(uuid.uuid4().hex[:8])}) + "\n")
    cmd = [sys.executable, "-m", "jdgraph.cli", "classify", "--batch", str(batch)]
    with open("/dev/full", "w") as full:
        done = subprocess.run(cmd, stdout=full, stderr=subprocess.PIPE, text=True, env=_env(catalog), timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "cannot write the output (No space left on device)" in done.stderr.replace("\n", " ")
    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, env=_env(catalog), timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["done_before"] == "saved"


def test_a_full_disk_under_the_database_during_persist_loses_nothing_and_resume_saves_once(catalog) -> None:
    """The server's own disk-full error (SQLSTATE 53100, what PostgreSQL sends when it cannot extend a file), raised
    by a trigger on the run's insert: the run fails with a DatabaseError saying nothing was saved, keeps its
    checkpoints, and once there is room again ``resume`` saves it exactly once."""
    from jdgraph.errors import DatabaseError

    run_id = str(uuid.uuid4())
    with catalog.db.connection() as conn:
        conn.execute(
            """CREATE OR REPLACE FUNCTION jdgraph_test_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN RAISE EXCEPTION USING ERRCODE = 'disk_full',
                   MESSAGE = 'could not extend file "base/16384/24601": No space left on device'; END $$"""
        )
        conn.execute(
            f"""CREATE TRIGGER disk_full BEFORE INSERT ON runs FOR EACH ROW
                WHEN (NEW.run_id = '{run_id}'::uuid) EXECUTE FUNCTION jdgraph_test_disk_full()"""
        )
    text = _jd(uuid.uuid4().hex[:8])
    try:
        with pytest.raises(DatabaseError, match="No space left on device") as err:
            jdgraph.classify(text, run_id=run_id)
        assert "nothing of it was saved" in err.value.message
    finally:
        with catalog.db.connection() as conn:
            conn.execute("DROP TRIGGER disk_full ON runs")
    assert _counts_for(catalog, [run_id])["runs"] == 0
    result = jdgraph.resume(run_id)
    assert result.persistence[0].outcome == "saved"
    assert _counts_for(catalog, [run_id]) == {
        "runs": 1,
        "with_result": 1,
        "queue_links": len(result.queued),
        "centroid_links": 1 if result.decision.confirmed_role else 0,
    }


def test_checkpoints_nothing_will_resume_are_reported_and_pruned(catalog) -> None:
    """A run killed mid-way and never resumed left its checkpoints forever, and so did runs kept with
    keep_checkpoints: `db status` counts them and `db prune-checkpoints` deletes them, sparing a recent unfinished
    run (it may still be resumed)."""
    from jdgraph.catalog.checkpoints import postgres_checkpointer
    from jdgraph.context import Context
    from jdgraph.graph.builder import builder
    from jdgraph.graph.state import InputState

    kept = jdgraph.classify(_jd(uuid.uuid4().hex[:8]), run_id=str(uuid.uuid4()), keep_checkpoints=True)
    app = builder.compile(checkpointer=postgres_checkpointer(catalog.db), interrupt_before=["persist"])
    cut_off = []
    for _ in range(2):
        run_id = str(uuid.uuid4())
        config = {"configurable": {"thread_id": run_id}}
        app.invoke(InputState(jd_text=_jd(uuid.uuid4().hex[:8]), run_id=run_id), config,
                   context=Context.from_env(catalog_reader=catalog, span_tagger="none"))  # fmt: skip
        cut_off.append(run_id)
    old, recent = cut_off
    with catalog.db.connection() as conn:  # the first was cut off ten days ago
        conn.execute(
            """UPDATE checkpoints
               SET checkpoint = jsonb_set(checkpoint, '{ts}', to_jsonb((now() - interval '10 days')::text))
               WHERE thread_id = %s""",
            (old,),
        )
    status = json.loads(
        subprocess.run(
            [sys.executable, "-m", "jdgraph.cli", "db", "status", "--json"],
            capture_output=True,
            text=True,
            env=_env(catalog),
            timeout=300,
            check=True,
        ).stdout
    )["checkpoints"]
    assert status["of_finished_runs"] >= 1 and status["stale"] >= 1
    pruned = subprocess.run([sys.executable, "-m", "jdgraph.cli", "db", "prune-checkpoints"], capture_output=True,
                            text=True, env=_env(catalog), timeout=300)  # fmt: skip
    assert pruned.returncode == 0, pruned.stderr

    def threads(run_id: str) -> int:
        return _rows(catalog, "SELECT count(*) AS n FROM checkpoints WHERE thread_id = %s", run_id)[0]["n"]

    assert threads(kept.run_id) == 0 and threads(old) == 0
    assert threads(recent) > 0  # may still be resumed
    assert jdgraph.resume(recent).persistence[0].outcome == "saved"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"input_id": "id\ud800"}, "the input_id is not valid UTF-8 text"),
        ({"input_id": "id\x00"}, "the input_id holds a NUL"),
        ({"title": "Rust\x00Dev"}, "the title holds a NUL"),
        ({"company": "Acme\x00"}, "the company holds a NUL"),
        ({"metadata": {"k\udc00": 1}}, "key 'k\\\\udc00' of the metadata is not valid UTF-8"),
        ({"metadata": {"seen": {1, 2}}}, r"metadata\['seen'\] is a set, which is not JSON"),
    ],
    ids=["surrogate input_id", "NUL input_id", "NUL title", "NUL company", "surrogate metadata key", "set metadata"],
)
def test_a_bad_field_is_an_input_error_before_anything_runs_or_is_written(catalog, fields, message) -> None:
    """Through the Python API these passed every step and then failed with psycopg's InvalidTextRepresentation or
    UntranslatableCharacter on the run's insert, or the checkpointer's 'not msgpack serializable' TypeError."""
    run_id = str(uuid.uuid4())
    with pytest.raises(InputError, match=message):
        jdgraph.classify(_jd(uuid.uuid4().hex[:8]), run_id=run_id, **fields)
    assert _counts_for(catalog, [run_id])["runs"] == 0
    if _rows(catalog, "SELECT to_regclass('checkpoints') IS NOT NULL AS ok")[0]["ok"]:  # made by a durable run
        assert _rows(catalog, "SELECT count(*) AS n FROM checkpoints WHERE thread_id = %s", run_id)[0]["n"] == 0


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"jd_text": 123}, "the job description must be a string, got int"),
        ({"title": "Rust\x00Dev"}, "the title holds a NUL"),
    ],
    ids=["number as text", "NUL title"],
)
def test_the_graphs_input_edge_checks_every_field(catalog, state: dict[str, Any], message: str) -> None:
    """As `langgraph dev` runs the graph: a NUL title failed the run's insert with psycopg's DataError, and a number
    as the text with a TypeError; both are InputErrors of the first step now."""
    from jdgraph.context import Context
    from jdgraph.graph import graph

    with pytest.raises(InputError, match=message):
        graph.invoke({"jd_text": _jd(uuid.uuid4().hex[:8]), **state}, context=Context.from_env())


def test_a_postmaster_killed_mid_batch_gives_every_line_a_result_or_an_error_line(open_tmp: Path, tmp_path) -> None:
    """kill -9 of the embedded server's postmaster during a --concurrency 4 batch ended it with psycopg_pool's
    PoolTimeout (pruning a finished run's checkpoints) and a traceback: half the lines got no output line. Every line
    now gets its result or its DatabaseError's line, in order, and the exit code says some failed. A home of its
    own: the session's server must survive this test."""
    home = open_tmp / "home"
    env = {**os.environ, "JDGRAPH_HOME": str(home), "JDGRAPH_DB_SCHEMA": "jdgraph", "COLUMNS": "80"}
    env.pop("DATABASE_URL", None)
    tag = uuid.uuid4().hex[:8]
    lines = [{"id": f"jd-{i}", "text": _jd(tag, i)} for i in range(16)]
    batch = tmp_path / "batch.jsonl"
    batch.write_text("".join(json.dumps(x) + "\n" for x in lines))
    cmd = [sys.executable, "-m", "jdgraph.cli", "classify", "--batch", str(batch), "--concurrency", "4"]
    with (tmp_path / "stderr").open("w+") as stderr:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the server is up and serving: the first line is classified
        postmaster = int((home / "pgdata" / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signal.SIGKILL)
        # Read on through the same buffered pipe: communicate(timeout=...) reads the raw descriptor, and what
        # readline had buffered beyond the first line was lost (the next line then began mid-JSON, now and then)
        rest = proc.stdout.read()
        proc.wait(timeout=600)
        stderr.seek(0)
        err = stderr.read()
    out = [json.loads(x) for x in [first, *rest.splitlines()]]
    assert proc.returncode == 1 and "Traceback" not in err, err[-3000:]
    assert [o["id"] for o in out] == [x["id"] for x in lines]  # every line, in order
    assert "result" in out[0]
    failed = [o for o in out if "result" not in o]
    # Each a DatabaseError's line: the operation that failed, or the server found gone ("cannot connect to PostgreSQL")
    assert failed and all(re.search("database|PostgreSQL", o["error"]) for o in failed), failed
    assert f"{len(failed)} of 16 lines failed" in err.replace("\n", " ")
    # Then --resume starts the server again and finishes the batch (never checked before the benchmark did): every
    # line a result, those saved before the kill not run again, each line's run once.
    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0 and "Traceback" not in resumed.stderr, resumed.stderr[-3000:]
    again = [json.loads(x) for x in resumed.stdout.splitlines()]
    assert [o["id"] for o in again] == [x["id"] for x in lines] and all("result" in o for o in again), again
    before = {o["id"]: o["result"]["run_id"] for o in out if "result" in o}
    assert all(o.get("done_before") == "saved" and o["result"]["run_id"] == before[o["id"]]
               for o in again if o["id"] in before)  # fmt: skip
    assert len({o["result"]["run_id"] for o in again}) == len(lines)
