"""Reliability benchmark (issue 12).

``python benchmarks/reliability.py [--jds 200] [--workers 8] [--processes 8] [--fuzz 0]``

Runs in a fresh starter catalog (schema ``reliability_<random>`` on ``$JDGRAPH_HOME``'s embedded server, dropped at
the end) and prints one table:

- **bad inputs**: every file of ``tests/corpus`` plus the 2 MB text, and batch lines of wrong JSON types, through
  the public API or the batch reader: each must be a clear ``InputError`` or a run whose status says what it is;
- **prompt injection**: the ``tests/redteam`` payloads in a real JD: no review item, no centroid move, the role the
  legitimate text supports;
- **LLM faults** through the local OpenAI-compatible stub (429 with Retry-After, 500, a timeout, truncated JSON,
  JSON that violates the schema, an adjudication naming a role that was not offered): every run completes;
- **process and database faults**: ``os._exit`` inside persist's transaction and between nodes, then ``resume``;
  ``kill -9`` of a batch after two lines, then the batch again and with ``--resume``; a connection terminated by the
  server during persist, and the server's disk-full error (SQLSTATE 53100) on the run's insert, each then ``resume``;
- **concurrency**: ``--jds`` JDs on ``--workers`` threads sharing roles, known skills and unknown skills, then the
  same batch again; and ``--processes`` CLI batches at once (the ``--jds`` split among them), each on ``--workers``
  threads. Checked from the rows: one run per JD, one pending item per proposal whose count equals the
  distinct texts that proposed it, each role's centroid n and vector equal to a recomputation from scratch (the
  start centroid and the JD vectors of the runs it counted), and nothing changed by the second pass.

``lost`` counts inputs with neither a saved run nor a clear error; ``double counted`` counts rows or counts that
a rerun, resume or race wrote twice. Both must be 0 (exit 1 otherwise). ``--fuzz N`` adds N parser fuzz inputs
(``benchmarks/fuzz_parser.py`` runs the ≥100,000 of the issue).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.stub_openai, tests.redteam

os.environ.setdefault("JDGRAPH_DB_SCHEMA", f"reliability_{uuid.uuid4().hex[:8]}")
os.environ.setdefault("DEEPEVAL_TELEMETRY_OPT_OUT", "1")

TEMPLATES = {
    "registered-nurse": (
        "Registered Nurse{tag}\nResponsibilities:\n- Administer medication and monitor patient vital signs\n"
        "- Maintain accurate patient records{unknown}\nRequirements:\n- Current RN license\n"
        "- {years}+ years of ward experience\n"
    ),
    "data-engineer": (
        "Data Engineer{tag}\nResponsibilities:\n"
        "- Build batch and streaming data pipelines with Apache Spark and Kafka\n"
        "- Model the warehouse in Snowflake and write SQL{unknown}\nRequirements:\n- {years}+ years of Python\n"
    ),
    "backend-engineer": (
        "Backend Engineer{tag}\nResponsibilities:\n"
        "- Design and build REST APIs and microservices in Go and PostgreSQL\n"
        "- Operate services on Kubernetes{unknown}\nRequirements:\n- {years}+ years of backend development\n"
    ),
}
UNKNOWN = ["", " with Qorvex Ledger", " in Zentrafy Suite", " using Blorptool"]


class Tally:
    def __init__(self) -> None:
        self.rows: Counter[str] = Counter()
        self.section = ""
        self.by_section: dict[str, Counter[str]] = defaultdict(Counter)

    def add(self, **kv: int) -> None:
        self.rows.update(kv)
        self.by_section[self.section].update(kv)


def _env() -> dict[str, str]:
    return {**os.environ}


def bad_inputs(t: Tally) -> None:
    import jdgraph
    from jdgraph.cli import _batch_line
    from jdgraph.errors import InputError

    corpus = ROOT / "tests" / "corpus"
    manifest = {k: v for k, v in json.loads((corpus / "manifest.json").read_text()).items() if k != "_"}
    for name, expected in manifest.items():
        data = (
            ("Python developer. Requirements: 3+ years. " * 50_000).encode()
            if name == "huge.txt"
            else (corpus / name).read_bytes()
        )
        t.add(inputs=1)
        try:
            result = jdgraph.classify(data, run_id=str(uuid.uuid4()))
            ok = result.status == expected.get("status") and result.persistence[0].outcome == "saved"
        except InputError as exc:
            ok = expected.get("says", "\0") in exc.message
        except Exception:  # a crash is what this counts
            ok = False
            t.add(crashes=1)
        t.add(lost=0 if ok else 1)
    lines = [b'{"id": 1, "text": 5}', b'{"id": [1], "text": "x"}', b'{"id": "a", "title": {}, "text": "x"}',
             b'{"id": "b", "text": "\\ud800"}', b"\xff\xfe", b"[1, 2]", b'"text"', b"{",
             b'{"text": "no id"}']  # fmt: skip
    for n, raw in enumerate(lines, 1):
        t.add(inputs=1)
        t.add(lost=0 if isinstance(_batch_line(n, raw), str) else 1)  # a message for the line, never an exception


def injection(t: Tally, catalog: Any) -> None:
    from tests.redteam.test_injection import NURSE, PAYLOADS, catalog_state

    import jdgraph

    def state() -> tuple[int, int, int]:
        return catalog_state(catalog)

    for payload in PAYLOADS.values():
        for placement in ("end", "start", "middle"):
            text = {
                "end": NURSE + payload,
                "start": payload + "\n" + NURSE,
                "middle": NURSE.replace("Requirements:", payload + "\nRequirements:"),
            }[placement] + f"\nReference: {uuid.uuid4()}\n"
            before = state()
            result = jdgraph.classify(text, run_id=str(uuid.uuid4()))
            t.add(inputs=1, rows_checked=3)
            held = (
                state() == before
                and not result.queued
                and result.decision.chosen_role.slug == "registered-nurse"
                and result.persistence[0].outcome == "saved"
            )
            t.add(lost=0 if held else 1)


def llm_faults(t: Tally) -> None:
    from tests.stub_openai import StubOpenAI

    import jdgraph

    stub = StubOpenAI()
    stub.server.handle_error = lambda request, address: None  # type: ignore[method-assign]  # a client that timed out
    os.environ["OPENAI_BASE_URL"] = stub.base_url
    os.environ["OPENAI_API_KEY"] = "sk-stub"
    jd = TEMPLATES["registered-nurse"].format(tag="", unknown="", years=2)
    faults = [
        [{"status": 429}],
        [{"status": 500}, {"status": 500}, {"status": 500}],
        [{"delay": 2, "content": "{}"}],
        [{"content": '{"jd_type": "pass", "role": "Nur'}, {"content": '{"skills": ['}],
        [{"json": {"jd_type": "maybe", "role": 5}}, {"json": {"unexpected": True}}],
        [{"json": {"chosen_role": "chief-wizard", "reason": "invented"}}],
    ]
    try:
        for script in faults:
            stub.script = list(script)
            t.add(inputs=1, faults=len(script))
            try:
                result = jdgraph.classify(
                    jd + f"Reference: {uuid.uuid4()}\n",
                    run_id=str(uuid.uuid4()),
                    parse_model="openai:gpt-4.1-mini",
                    adjudicate_model="openai:gpt-4.1-mini",
                    llm_timeout_s=0.5,
                )
                t.add(lost=0 if result.status == "completed" else 1, survived=len(script))
            except Exception:  # a crash is what this counts
                t.add(lost=1, crashes=1)
    finally:
        stub.close()
        os.environ.pop("OPENAI_BASE_URL", None)
        os.environ.pop("OPENAI_API_KEY", None)


_KILL_INSIDE_PERSIST = """
import os, sys
from jdgraph.catalog.runs import RunStore
RunStore._update_centroid = lambda self, conn, run, role_id: os._exit(17)
import jdgraph
jdgraph.classify(open(sys.argv[1]).read(), run_id=sys.argv[2])
"""
_KILL_BETWEEN_NODES = """
import os, sys
import jdgraph.graph.nodes as nodes
real = nodes.extract
def extract_then_die(state, runtime):
    real(state, runtime)
    os._exit(18)
nodes.extract = extract_then_die
import jdgraph
jdgraph.classify(open(sys.argv[1]).read(), run_id=sys.argv[2])
"""


def _run_rows(catalog: Any, run_ids: list[str]) -> dict[str, int]:
    with catalog.db.connection() as conn:
        row = conn.execute(
            """SELECT (SELECT count(*) FROM runs WHERE run_id = ANY(%(ids)s::uuid[])) AS runs,
                      (SELECT count(*) FROM review_queue_runs WHERE run_id = ANY(%(ids)s::uuid[])) AS queue,
                      (SELECT count(*) FROM role_centroid_runs WHERE run_id = ANY(%(ids)s::uuid[])) AS centroid""",
            {"ids": run_ids},
        ).fetchone()
    return dict(row)


def _fail_then_resume(t: Tally, catalog: Any, text: str, run_id: str, undo: Any) -> None:
    """A run that must fail with a DatabaseError and save nothing; then, the fault undone, ``resume`` saves it."""
    import jdgraph
    from jdgraph.errors import DatabaseError

    t.add(inputs=1, faults=1)
    try:
        jdgraph.classify(text, run_id=run_id)
    except DatabaseError:
        t.add(survived=1)
    finally:
        undo()
    jdgraph.resume(run_id)
    t.add(rows_checked=1, lost=0 if _run_rows(catalog, [run_id])["runs"] == 1 else 1)


def process_faults(t: Tally, catalog: Any, tmp: Path) -> None:
    import jdgraph
    from jdgraph.catalog.runs import RunStore

    for script, code in ((_KILL_INSIDE_PERSIST, 17), (_KILL_BETWEEN_NODES, 18)):
        jd = tmp / "jd.txt"
        jd.write_text(TEMPLATES["data-engineer"].format(tag=f" {uuid.uuid4().hex[:6]}", unknown=UNKNOWN[1], years=3))
        run_id = str(uuid.uuid4())
        died = subprocess.run([sys.executable, "-c", script, str(jd), run_id], env=_env(), capture_output=True)
        t.add(inputs=1, faults=1)
        result = jdgraph.resume(run_id)
        rows = _run_rows(catalog, [run_id])
        expected = {"runs": 1, "queue": len(result.queued), "centroid": 1 if result.decision.confirmed_role else 0}
        t.add(survived=1 if died.returncode == code else 0, rows_checked=3)
        t.add(double=sum(max(0, rows[k] - v) for k, v in expected.items()),
              lost=sum(max(0, v - rows[k]) for k, v in expected.items()))  # fmt: skip

    real = RunStore._update_centroid

    def drop(self: Any, conn: Any, run: Any, role_id: Any) -> Any:
        conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return real(self, conn, run, role_id)

    RunStore._update_centroid = drop  # type: ignore[method-assign]

    def undo_drop() -> None:
        RunStore._update_centroid = real  # type: ignore[method-assign]

    text = TEMPLATES["backend-engineer"].format(tag=" drop", unknown="", years=4)
    _fail_then_resume(t, catalog, text, str(uuid.uuid4()), undo_drop)

    # The server's disk-full error (SQLSTATE 53100) on the run's insert, then resume once there is room.
    run_id = str(uuid.uuid4())
    with catalog.db.connection() as conn:
        conn.execute(
            """CREATE OR REPLACE FUNCTION reliability_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN RAISE EXCEPTION USING ERRCODE = 'disk_full', MESSAGE = 'No space left on device'; END $$"""
        )
        conn.execute(
            f"""CREATE TRIGGER disk_full BEFORE INSERT ON runs FOR EACH ROW WHEN (NEW.run_id = '{run_id}'::uuid)
                EXECUTE FUNCTION reliability_disk_full()"""
        )

    def undo_disk_full() -> None:
        with catalog.db.connection() as conn:
            conn.execute("DROP TRIGGER disk_full ON runs")

    _fail_then_resume(t, catalog, TEMPLATES["data-engineer"].format(tag=" full", unknown="", years=2), run_id,
                      undo_disk_full)  # fmt: skip

    # kill -9 of a batch after two lines, then the batch again, then with --resume.
    batch = tmp / "batch.jsonl"
    lines = [
        {"id": f"k{i}", "text": TEMPLATES["registered-nurse"].format(tag=f" K{i}", unknown=UNKNOWN[i % 4], years=i)}
        for i in range(8)
    ]
    batch.write_text("".join(json.dumps(x) + "\n" for x in lines))
    cmd = [sys.executable, "-m", "jdgraph.cli", "classify", "--batch", str(batch), "--concurrency", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env())
    assert proc.stdout is not None
    for _ in range(2):
        proc.stdout.readline()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    t.add(inputs=len(lines), faults=1, survived=1)
    again = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    outs = [json.loads(x) for x in again.stdout.splitlines()]
    run_ids = [o["result"]["run_id"] for o in outs if "result" in o]
    queued = sum(len(o["result"]["queued"]) for o in outs if "result" in o)
    rows = _run_rows(catalog, run_ids)
    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, env=_env())
    t.add(rows_checked=6, lost=len(lines) - len(run_ids),
          double=max(0, rows["runs"] - len(lines)) + max(0, rows["queue"] - queued)
          + sum(1 for k, v in _run_rows(catalog, run_ids).items() if v != rows[k])
          + sum(1 for x in resumed.stdout.splitlines() if json.loads(x).get("done_before") != "saved"))  # fmt: skip


def _jd_vector(catalog: Any, text: str) -> np.ndarray:
    """The vector persist adds to a centroid, recomputed from the text alone."""
    from jdgraph.graph.persist import _jd_vector, responsibility_for_kras
    from jdgraph.graph.state import State
    from jdgraph.graph.text import normalise_text

    state = State(jd_text=text, text=normalise_text(text))
    bullets = [s.text for s in responsibility_for_kras(state)]
    vectors = catalog.embeddings.embed_array(bullets) if bullets else np.zeros((0, catalog.embeddings.dimension))
    return _jd_vector(state, catalog, vectors)


def concurrency(t: Tally, catalog: Any, n: int, workers: int) -> int:
    from jdgraph.api import BatchItem, classify_many
    from jdgraph.graph.identity import input_hash
    from jdgraph.graph.text import normalise_text

    def centroids() -> dict[str, tuple[int, np.ndarray]]:
        with catalog.db.connection() as conn:
            rows = conn.execute("SELECT slug, centroid_n, centroid FROM roles WHERE centroid IS NOT NULL").fetchall()
        return {r["slug"]: (int(r["centroid_n"]), np.asarray(r["centroid"].to_numpy(), dtype=np.float64)) for r in rows}

    start = centroids()
    roles = list(TEMPLATES)
    # Every third JD repeats an earlier text exactly (a re-posted ad): it must count once.
    texts = []
    for i in range(n):
        j = i - 1 if i % 3 == 2 else i
        texts.append(TEMPLATES[roles[j % 3]].format(tag=f" (req {j})", unknown=UNKNOWN[j % 4], years=1 + j % 7))
    items = [BatchItem(f"c{i}", text) for i, text in enumerate(texts)]
    t0 = time.perf_counter()
    first = list(classify_many(items, concurrency=workers))
    elapsed = time.perf_counter() - t0
    t.add(inputs=n, concurrent=n)
    results = [o.result for o in first if o.result is not None]
    t.add(lost=n - len(results), crashes=sum(1 for o in first if o.error is not None))
    first = [o for o in first if o.result is not None]
    run_ids = [r.run_id for r in results]

    with catalog.db.connection() as conn:
        runs = conn.execute("SELECT run_id::text AS id, input_id FROM runs WHERE run_id = ANY(%s::uuid[])",
                            (run_ids,)).fetchall()  # fmt: skip
        queue = conn.execute("SELECT id, kind, proposal_key, status, occurrences FROM review_queue").fetchall()
        links = conn.execute("SELECT queue_id, run_id::text AS run_id, input_hash FROM review_queue_runs").fetchall()
        counted = conn.execute(
            "SELECT r.slug, c.run_id::text AS run_id FROM role_centroid_runs c JOIN roles r ON r.id = c.role_id "
            "WHERE c.run_id = ANY(%s::uuid[])",
            (run_ids,),
        ).fetchall()
    t.add(rows_checked=len(runs) + len(queue) + len(links) + len(counted))
    t.add(double=max(0, len(runs) - len(set(r["id"] for r in runs))))
    # One item per (kind, key); its count = the distinct texts (of this batch and before) linked to it.
    keys = Counter((q["kind"], q["proposal_key"]) for q in queue)
    t.add(double=sum(c - 1 for c in keys.values()))
    per_item = defaultdict(set)
    for link in links:
        per_item[link["queue_id"]].add(link["input_hash"])
    t.add(double=sum(1 for q in queue if q["occurrences"] > len(per_item[q["id"]])),
          lost=sum(1 for q in queue if q["occurrences"] < len(per_item[q["id"]])))  # fmt: skip
    # What the results say was queued must be there, counted for the run's text (by this run, or by the run of
    # the same text that came first).
    by_key = {(q["kind"], q["proposal_key"]): q["id"] for q in queue}
    for o, r in zip(first, results, strict=True):
        text_hash = input_hash(normalise_text(texts[int(o.id[1:])]))
        for item in r.queued:
            hashes = {link["input_hash"] for link in links if link["queue_id"] == by_key.get((item.kind, item.key))}
            t.add(lost=0 if text_hash in hashes else 1)
    # Centroids from scratch: start n and vector, plus each counted run's JD vector (a text counts once).
    text_of = {r.run_id: texts[int(o.id[1:])] for o, r in zip(first, results, strict=True)}
    now = centroids()
    by_role: dict[str, list[str]] = defaultdict(list)
    for c in counted:
        by_role[c["slug"]].append(c["run_id"])
    for slug, ids in by_role.items():
        n0, c0 = start.get(slug, (0, np.zeros_like(next(iter(now.values()))[1])))
        vectors = [_jd_vector(catalog, text_of[i]) for i in ids]
        expected = (n0 * c0 + np.sum(vectors, axis=0)) / (n0 + len(ids))
        n1, c1 = now[slug]
        t.add(rows_checked=1, double=1 if n1 > n0 + len(ids) else 0, lost=1 if n1 < n0 + len(ids) else 0)
        t.add(double=0 if np.allclose(c1, expected, atol=1e-4) else 1)
        distinct = {text_of[i] for i in ids}
        t.add(double=len(ids) - len(distinct))  # a repeated text moved the centroid twice

    # The same batch again: nothing may change.
    second = list(classify_many(items, concurrency=workers))
    with catalog.db.connection() as conn:
        again = conn.execute(
            "SELECT (SELECT count(*) FROM runs) AS runs, (SELECT coalesce(sum(occurrences), 0) FROM review_queue) "
            "AS occ, (SELECT coalesce(sum(centroid_n), 0) FROM roles) AS n"
        ).fetchone()
    t.add(rows_checked=3, concurrent=len(second))
    t.add(double=sum(1 for o in second if o.result and o.result.persistence[0].outcome == "saved"))
    with catalog.db.connection() as conn:
        after = conn.execute(
            "SELECT (SELECT count(*) FROM runs) AS runs, (SELECT coalesce(sum(occurrences), 0) FROM review_queue) "
            "AS occ, (SELECT coalesce(sum(centroid_n), 0) FROM roles) AS n"
        ).fetchone()
    t.add(double=sum(1 for k in after if after[k] != again[k]))
    print(f"  concurrency: {n} JDs on {workers} workers in {elapsed:.1f} s ({n / elapsed:.1f} JDs/s); centroids of "
          f"{len(by_role)} roles recomputed from {len(counted)} runs; {len(queue)} review items; then the same "
          f"{len(second)} JDs again", file=sys.stderr)  # fmt: skip
    return n


def processes(t: Tally, catalog: Any, tmp: Path, n_procs: int, per_proc: int, workers: int) -> None:
    """``n_procs`` CLI batches at once, each on ``workers`` threads, on the same roles and unknown skills (the
    issue's 8 × 8 that all crashed): every line saved once, and the counts add up across processes."""
    if n_procs <= 0:
        return

    def role_counts() -> dict[str, int]:
        with catalog.db.connection() as conn:
            rows = conn.execute("SELECT slug, centroid_n FROM roles WHERE centroid IS NOT NULL").fetchall()
        return {r["slug"]: int(r["centroid_n"]) for r in rows}

    before = role_counts()
    files = []
    for p in range(n_procs):
        path = tmp / f"proc{p}.jsonl"
        with path.open("w") as f:
            for j in range(per_proc):
                i = p * per_proc + j
                text = TEMPLATES[list(TEMPLATES)[i % 3]].format(tag=f" (mp {i})", unknown=UNKNOWN[i % 4], years=i % 9)
                f.write(json.dumps({"id": f"mp{i}", "text": text}) + "\n")
        files.append(path)
    cmd = [sys.executable, "-m", "jdgraph.cli", "classify", "--concurrency", str(workers), "--batch"]
    procs = [subprocess.Popen([*cmd, str(f)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              env=_env()) for f in files]  # fmt: skip
    outs = [json.loads(line) for proc in procs for line in proc.communicate()[0].splitlines()]
    total = n_procs * per_proc
    results = [o["result"] for o in outs if "result" in o]
    t.add(inputs=total, concurrent=total, lost=total - len(results), crashes=sum(1 for p in procs if p.returncode))
    run_ids = [r["run_id"] for r in results]
    with catalog.db.connection() as conn:
        runs = conn.execute(
            "SELECT count(*) AS n, count(DISTINCT run_id) AS d FROM runs WHERE run_id = ANY(%s::uuid[])", (run_ids,)
        ).fetchone()
        items = conn.execute(
            "SELECT occurrences, (SELECT count(*) FROM review_queue_runs l WHERE l.queue_id = q.id) AS links "
            "FROM review_queue q"
        ).fetchall()
        counted = conn.execute(
            "SELECT r.slug, count(*) AS n FROM role_centroid_runs c JOIN roles r ON r.id = c.role_id "
            "WHERE c.run_id = ANY(%s::uuid[]) GROUP BY r.slug",
            (run_ids,),
        ).fetchall()
    after = role_counts()
    t.add(rows_checked=1 + len(items) + len(counted))
    t.add(lost=max(0, len(run_ids) - runs["n"]), double=max(0, runs["n"] - runs["d"]))
    t.add(double=sum(1 for i in items if i["occurrences"] != i["links"]))
    t.add(double=sum(1 for c in counted if after[c["slug"]] != before.get(c["slug"], 0) + c["n"]))


def fuzz(t: Tally, n: int) -> None:
    if n <= 0:
        return
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fuzz_parser.py"), "--n", str(n)],
                          capture_output=True, text=True, env=_env())  # fmt: skip
    t.add(inputs=n, crashes=0 if done.returncode == 0 else 1)
    print(done.stdout[-600:], file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jds", type=int, default=200)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--processes", type=int, default=8, help="CLI batches at once (--jds split among them)")
    ap.add_argument("--fuzz", type=int, default=0)
    args = ap.parse_args()

    from jdgraph.catalog.registry import open_catalog

    catalog = open_catalog("starter")
    t = Tally()
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name, step in (
                ("bad inputs", lambda: bad_inputs(t)),
                ("prompt injection", lambda: injection(t, catalog)),
                ("LLM faults", lambda: llm_faults(t)),
                ("process and database faults", lambda: process_faults(t, catalog, Path(tmp))),
                ("concurrency", lambda: concurrency(t, catalog, args.jds, args.workers)),
                (
                    "processes",
                    lambda: processes(
                        t, catalog, Path(tmp), args.processes, args.jds // max(1, args.processes), args.workers
                    ),
                ),
                ("parser fuzz", lambda: fuzz(t, args.fuzz)),
            ):
                s0 = time.perf_counter()
                t.section = name
                step()
                got = t.by_section[name]
                print(f"  {name}: {time.perf_counter() - s0:.0f} s, inputs {got['inputs']}, faults {got['faults']}, "
                      f"lost {got['lost']}, double counted {got['double']}", file=sys.stderr)  # fmt: skip
    finally:
        catalog.db.drop_schema(including_prefixed=True)
    r = t.rows
    print(f"\nreliability ({time.perf_counter() - t0:.0f} s, catalog schema {catalog.db.schema}, dropped)\n")
    print(
        "| inputs tried | faults injected | crashes survived | concurrent runs | rows checked | lost | double counted |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(f"| {r['inputs']} | {r['faults']} | {r['survived']} of {r['faults']} (crashes: {r['crashes']}) | "
          f"{r['concurrent']} | {r['rows_checked']} | {r['lost']} | {r['double']} |")  # fmt: skip
    return 1 if r["lost"] or r["double"] or r["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
