"""Reliability benchmark (issues 12 and 19).

``python benchmarks/reliability.py [--jds 200] [--workers 8] [--processes 8] [--fuzz 0] [--only PART,...]``

Runs in a fresh starter catalog (schema ``reliability_<random>`` on ``$JDGRAPH_HOME``'s embedded server, dropped at
the end) and prints one table:

- **bad inputs**: every file of ``tests/corpus`` plus the 2 MB text, and batch lines of wrong JSON types, through
  the public API or the batch reader: each must be a clear ``InputError`` or a run whose status says what it is;
- **prompt injection**: the ``tests/redteam`` payloads (plain and disguised) in a real JD: no proposal for the
  catalog, no centroid move, the role the legitimate text supports, and one ``quarantine`` review item quoting it;
- **LLM faults** through the local OpenAI-compatible stub (429 with Retry-After, 500, a timeout, truncated JSON,
  JSON that violates the schema, an adjudication naming a role that was not offered): every run completes;
- **process and database faults**: ``os._exit`` inside persist's transaction and between nodes, then ``resume``;
  ``kill -9`` of a batch after two lines, then the batch again and with ``--resume``; a connection terminated by the
  server during persist, and the server's disk-full error (SQLSTATE 53100) on the run's insert, each then ``resume``;
- **bad fields**: a NUL or lone surrogate in a batch line's title, company or id is that line's error, the good lines
  around it saved once; through ``jdgraph.classify`` each bad field is an ``InputError`` with nothing written;
- **document bombs** (``tests/bombs.py``: a DOCX of 324 MB in 980 KB, PDF Flate, page-tree and form bombs): an
  ``InputError`` in a child capped at 1.5 GB, and exit 2 with no traceback from ``jdgraph classify``;
- **planted home** (as root): a home another user made in a world-writable folder, with a known password, a link
  for ``pgdata``, ``pgdata.users.tmp`` or ``pgdata.lock``: refused (exit 2), no root-owned file written through;
- **DNS rebinding** on the web page: a foreign Host gets no page, cookie or approval; a NUL in a query is a 400;
- **killed postmaster**: ``kill -9`` of a home's server during a ``--concurrency 4`` batch: each line a result or
  a database error line, then ``--resume`` saves the rest once; **SIGTERM** (and SIGKILL) of a server's last user
  stops the server;
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
import re
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


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``jdgraph ARGS`` through its public entry point (the module layout is not the benchmark's concern)."""
    return subprocess.run([sys.executable, "-m", "jdgraph.cli", *args], capture_output=True, text=True,
                          env=env or _env())  # fmt: skip


def bad_inputs(t: Tally) -> None:
    import jdgraph
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
    with tempfile.TemporaryDirectory() as tmp:
        batch = Path(tmp) / "bad.jsonl"
        batch.write_bytes(b"\n".join(lines) + b"\n")
        done = _cli("classify", "--batch", str(batch))
    outs = _json_lines(done.stdout)
    t.add(inputs=len(lines), crashes=int("Traceback" in done.stderr))
    # a message for each line, in order, never an exception that ends the batch
    t.add(lost=len(lines) - sum(1 for n, o in enumerate(outs, 1) if o.get("line") == n and "error" in o))


def injection(t: Tally, catalog: Any) -> None:
    from tests.redteam.test_injection import DISGUISED, NURSE, PAYLOADS, catalog_state

    import jdgraph

    def state() -> tuple[int, int, int]:
        return catalog_state(catalog)

    for payload in (PAYLOADS | DISGUISED).values():
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
                # its one review item is the quarantine itself, quoting what held it; nothing else is proposed
                and [q.kind for q in result.queued] == ["quarantine"]
                and str(result.queued[0].payload["evidence"]) in text
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


HOMES: list[Path] = []
"""The embedded-server homes this run made (their accounts are removed at the end)."""


def _own_home(tmp: Path, name: str) -> tuple[Path, dict[str, str]]:
    """A fresh home for an embedded server of its own, and the environment that uses it. Its parent must be one
    others may traverse: as root, the server runs as an account of its own that must reach the home."""
    parent = tmp / "homes"
    parent.mkdir(mode=0o711, exist_ok=True)
    parent.chmod(0o711)
    home = parent / name
    HOMES.append(home)
    env = {**_env(), "JDGRAPH_HOME": str(home), "JDGRAPH_DB_SCHEMA": "jdgraph"}
    env.pop("DATABASE_URL", None)
    return home, env


def _json_lines(out: str) -> list[dict[str, Any]]:
    """A batch's output lines; one that is not a JSON object stays, as neither a result nor an error (lost)."""
    lines = []
    for line in out.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if line.strip():
            lines.append(obj if isinstance(obj, dict) else {"unparsed": line})
    return lines


def _postmaster(home: Path) -> int:
    return int((home / "pgdata" / "postmaster.pid").read_text().split()[0])


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie left for its parent to reap does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def bad_fields(t: Tally, catalog: Any, tmp: Path) -> None:
    """A NUL or a lone surrogate in a batch line's title, company or id ended the whole batch (a driver error, or a
    UnicodeEncodeError before any output): now each is an error line and the good lines around them are saved once.
    Through ``jdgraph.classify`` each bad field is an ``InputError`` before anything is written."""
    import jdgraph
    from jdgraph.errors import InputError

    tag = uuid.uuid4().hex[:8]

    def jd(i: int) -> str:
        return TEMPLATES["registered-nurse"].format(tag=f" ({tag}-{i})", unknown=UNKNOWN[i % 4], years=2)

    good = [json.dumps({"id": f"ok-{tag}-{i}", "text": jd(i)}) for i in (0, 1)]
    bad = [
        json.dumps({"id": f"nul-title-{tag}", "text": jd(10), "title": "Rust\u0000Dev"}),
        '{"id": "w9\\udc00", "text": "Registered Nurse\\n- Care for patients"}',
        json.dumps({"id": f"nul-company-{tag}", "text": jd(11), "company": "Acme\u0000"}),
        json.dumps({"id": f"nul-id-{tag}\u0000", "text": jd(12)}),
    ]
    batch = tmp / "bad-fields.jsonl"
    batch.write_text("\n".join([good[0], *bad, good[1]]) + "\n")
    done = _cli("classify", "--batch", str(batch))
    outs = _json_lines(done.stdout)
    t.add(inputs=len(good) + len(bad), crashes=int("Traceback" in done.stderr or done.returncode != 1))
    errors = [o for o in outs[1:-1] if "error" in o and "result" not in o]
    results = [o["result"] for o in (outs[0], outs[-1]) if "result" in o] if len(outs) == 6 else []
    t.add(lost=len(bad) - len(errors) + len(good) - len(results))
    with catalog.db.connection() as conn:
        saved = conn.execute(
            "SELECT input_id, count(*) AS n FROM runs WHERE input_id = ANY(%s) GROUP BY input_id",
            ([f"ok-{tag}-0", f"ok-{tag}-1"],),
        ).fetchall()
        stray = conn.execute(
            "SELECT count(*) AS n FROM runs WHERE jd_text LIKE %s OR jd_text LIKE %s OR jd_text LIKE %s",
            tuple(f"%({tag}-{i})%" for i in (10, 11, 12)),
        ).fetchone()["n"]
    t.add(rows_checked=len(saved) + 1, double=sum(r["n"] - 1 for r in saved) + stray,
          lost=len(good) - len(saved))  # fmt: skip

    # Through the library: each bad field an InputError, with no run and no checkpoint for its run id.
    bad_kwargs: list[dict[str, Any]] = [
        {"input_id": "id\ud800"},
        {"title": "a\x00"},
        {"company": "Acme\x00"},
        {"input_id": "id\x00"},
        {"metadata": {"k\udc00": 1}},
        {"metadata": {"s": {1}}},
    ]
    for i, fields in enumerate(bad_kwargs):
        run_id = str(uuid.uuid4())
        t.add(inputs=1)
        try:
            jdgraph.classify(jd(20 + i), run_id=run_id, **fields)
            refused = False
        except InputError:
            refused = True
        except Exception:  # a crash is what this counts
            refused = False
            t.add(crashes=1)
        with catalog.db.connection() as conn:
            left = conn.execute(
                "SELECT (SELECT count(*) FROM runs WHERE run_id = %(id)s::uuid)"
                " + (SELECT count(*) FROM checkpoints WHERE thread_id = %(id)s::text) AS n",
                {"id": run_id},
            ).fetchone()["n"]
        t.add(rows_checked=2, lost=0 if refused else 1, double=int(left))


def bombs(t: Tally, tmp: Path) -> None:
    """Documents that inflate past any reasonable size (the issue's 980 KB DOCX of 324 MB, PDF Flate, page-tree and
    form bombs): each a clear ``InputError`` in bounded memory (a child capped at 1.5 GB), and exit 2 with no
    traceback from ``jdgraph classify``."""
    from tests import bombs as built

    child = (
        "import json, resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1_500_000_000,) * 2)\n"
        "import jdgraph\n"
        "from jdgraph.errors import InputError\n"
        "try:\n"
        "    jdgraph.classify(open(sys.argv[1], 'rb').read(), persist=False); r = 'read'\n"
        "except InputError as e:\n"
        "    r = 'InputError'\n"
        # VmHWM, not ru_maxrss: Linux carries the forking parent's peak (this benchmark's) into ru_maxrss
        "peak = next(int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM'))\n"
        "print(json.dumps([r, peak // 1024]))\n"
    )
    peaks = []
    for name, build in (("bomb.docx", built.docx_bomb), ("flate.pdf", built.pdf_flate_bomb),
                        ("page-tree.pdf", built.pdf_page_tree_bomb), ("form.pdf", built.pdf_form_bomb)):  # fmt: skip
        path = tmp / name
        path.write_bytes(build())
        t.add(inputs=1, faults=1)
        read = subprocess.run([sys.executable, "-c", child, str(path)], capture_output=True, text=True, env=_env())
        try:
            outcome, peak_mb = json.loads(read.stdout.splitlines()[-1])
        except (IndexError, ValueError):
            outcome, peak_mb = "crashed", 0
        peaks.append(f"{name} {outcome} at {peak_mb} MB")
        cli = _cli("classify", str(path), "--no-persist")
        held = outcome == "InputError" and peak_mb < 300 and cli.returncode == 2 and "Traceback" not in cli.stderr
        t.add(survived=int(held), crashes=int(outcome == "crashed" or "Traceback" in cli.stderr), lost=int(not held))
    print(f"  bombs: {', '.join(peaks)} (peak memory of a child reading it)", file=sys.stderr)


def planted_home(t: Tally, tmp: Path) -> None:
    """Another local user plants root's JDGRAPH_HOME in a world-writable folder before root's first run: a known
    password, ``pgdata.users.tmp`` or ``pgdata.lock`` as a link to a root-owned file, or ``pgdata`` as a link to
    the planter's own folder. Each home is refused with a ConfigError (exit 2, no traceback), the root-owned file is
    untouched and nothing is written to the planter's folder. Root only (the planter is ``nobody``)."""
    if os.geteuid() != 0:
        print("  planted home: skipped (needs root, to plant as another user)", file=sys.stderr)
        return
    shared = tmp / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    victim = tmp / "victim"
    victim.write_text("root's\n")
    for plant in ("password", "users.tmp", "pgdata", "lock"):
        home, theirs = shared / f"h-{plant}", shared / f"t-{plant}"
        HOMES.append(home)  # refused before any account is made, unless that regresses
        planter = ["runuser", "-u", "nobody", "--"]
        subprocess.run([*planter, "mkdir", str(home), str(theirs)], check=True)
        how = {
            "password": f"echo known > {home}/pgdata.password",
            "users.tmp": f"ln -s {victim} {home}/pgdata.users.tmp",
            "pgdata": f"ln -s {theirs} {home}/pgdata",
            "lock": f"ln -s {victim} {home}/pgdata.lock",
        }[plant]
        subprocess.run([*planter, "sh", "-c", how], check=True)
        _, env = _own_home(tmp, "unused")
        done = _cli("db", "status", env={**env, "JDGRAPH_HOME": str(home)})
        refused = done.returncode == 2 and "Traceback" not in done.stderr
        t.add(inputs=1, faults=1, survived=int(refused), crashes=int("Traceback" in done.stderr),
              rows_checked=2, lost=int(victim.read_text() != "root's\n" or any(theirs.iterdir())))  # fmt: skip


def rebinding(t: Tally, catalog: Any) -> None:
    """A DNS-rebinding page (Host: evil.example, same-origin to the browser) gets no page, no CSRF cookie, and its
    post cannot approve a pending item; a NUL in a query is a 400 page, not a 500."""
    from starlette.testclient import TestClient

    import jdgraph
    from jdgraph.ui.app import create_app

    jdgraph.classify(TEMPLATES["data-engineer"].format(tag=f" {uuid.uuid4().hex[:6]}", unknown=UNKNOWN[2],
                                                                years=5), run_id=str(uuid.uuid4()))  # fmt: skip
    item = next(i for i in catalog.review.list(status="pending", limit=500) if i.kind != "quarantine")
    client = TestClient(create_app(catalog, reviewer="bench"), base_url="http://127.0.0.1:8765",
                        raise_server_exceptions=False)  # fmt: skip
    evil = {"host": "evil.example:8765"}
    page = client.get("/review", headers=evil)
    client.cookies.set("jdgraph_csrf", "t" * 32)
    post = client.post(f"/review/{item.id}/approve", data={"csrf": "t" * 32, "reviewer": "attacker"},
                       headers={**evil, "origin": "http://evil.example:8765", "sec-fetch-site": "same-origin"},
                       follow_redirects=False)  # fmt: skip
    nul = [client.get(path) for path in ("/review?q=%00", "/runs?q=a%00b")]
    ours = client.get("/review")  # the page still answers its own host name
    t.add(inputs=5, faults=4, rows_checked=1, crashes=sum(1 for r in (page, post, *nul) if r.status_code >= 500))
    held = [
        page.status_code in (400, 421) and "jdgraph_csrf" not in page.headers.get("set-cookie", ""),
        post.status_code in (400, 421) and catalog.review.get(item.id).status == "pending",
        *(r.status_code == 400 for r in nul),
    ]
    t.add(survived=sum(held), lost=len(held) - sum(held) + int(ours.status_code != 200))


def killed_postmaster(t: Tally, tmp: Path, n: int = 30) -> None:
    """``kill -9`` of the embedded server's postmaster during a ``--concurrency 4`` batch (a home of its own): every
    line gets its result or a database error line, in order, exit 1, no traceback; then ``--resume`` starts the
    server again and saves the rest, each line once, those saved before marked ``done_before``."""
    home, env = _own_home(tmp, "postmaster")
    tag = uuid.uuid4().hex[:8]
    lines = [{"id": f"pm{i}", "text": TEMPLATES[list(TEMPLATES)[i % 3]].format(
        tag=f" (pm {tag} {i})", unknown=UNKNOWN[i % 4], years=1 + i % 7)} for i in range(n)]  # fmt: skip
    batch = tmp / "postmaster.jsonl"
    batch.write_text("".join(json.dumps(x) + "\n" for x in lines))
    cmd = [sys.executable, "-m", "jdgraph.cli", "classify", "--batch", str(batch), "--concurrency", "4"]
    with (tmp / "postmaster.stderr").open("w+") as stderr:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the server is up and a line is classified
        os.kill(_postmaster(home), signal.SIGKILL)
        # on through the same buffered pipe: communicate(timeout=...) reads the raw descriptor and would lose what
        # readline buffered beyond the first line
        rest = proc.stdout.read()
        proc.wait(timeout=900)
        stderr.seek(0)
        err = stderr.read()
    outs = _json_lines(first + rest)
    answered = [o for o in outs if "result" in o or re.search("database|PostgreSQL", o.get("error", ""))]
    saved = {o["id"] for o in outs if "result" in o}
    in_order = [o.get("id") for o in outs] == [x["id"] for x in lines]
    t.add(inputs=n, faults=1, survived=int(proc.returncode == 1 and "Traceback" not in err),
          crashes=int("Traceback" in err), lost=n - len(answered) + int(not in_order))  # fmt: skip
    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, env=env)
    again = _json_lines(resumed.stdout)
    results = [o for o in again if "result" in o]
    # a line saved before the kill must not run again: its line says done_before
    rerun = sum(1 for o in results if o["id"] in saved and o.get("done_before") != "saved")
    t.add(crashes=int("Traceback" in resumed.stderr or resumed.returncode != 0), lost=n - len(results), double=rerun)
    count = ("import json; from jdgraph.catalog.db import Database; db = Database()\n"
             "with db.connection() as conn:\n"
             "    rows = conn.execute('SELECT input_id, count(*) AS n, count(result) AS r FROM runs GROUP BY input_id')"
             ".fetchall()\n"
             "print(json.dumps({r['input_id']: [r['n'], r['r']] for r in rows}))")  # fmt: skip
    rows = json.loads(subprocess.run([sys.executable, "-c", count], capture_output=True, text=True, env=env,
                                     check=True).stdout.splitlines()[-1])  # fmt: skip
    t.add(rows_checked=len(rows), lost=sum(1 for x in lines if rows.get(x["id"], [0, 0])[1] != 1),
          double=sum(1 for v in rows.values() if v[0] > 1))  # fmt: skip
    print(f"  killed postmaster: {len(saved)} of {n} lines saved before the kill, {len(outs) - len(saved)} error "
          f"lines; --resume: exit {resumed.returncode}, {len(results)} results "
          f"({sum(1 for o in results if o.get('done_before') == 'saved')} done before)", file=sys.stderr)  # fmt: skip


def sigterm_last_user(t: Tally, tmp: Path) -> None:
    """SIGTERM (and SIGKILL) of the last process using an embedded server: the server stops within seconds (atexit
    does not run on SIGTERM; a watcher started with the postmaster stops it once no user is alive)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        home, env = _own_home(tmp, f"last-user-{sig.name}")
        code = ("from jdgraph.catalog.db import Database; Database().server_info(); print('ready', flush=True)\n"
                "import time; time.sleep(600)")  # fmt: skip
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None
        proc.stdout.readline()
        postmaster = _postmaster(home)
        proc.send_signal(sig)
        proc.wait()
        deadline = time.time() + 30
        while _alive(postmaster) and time.time() < deadline:
            time.sleep(0.2)
        t.add(inputs=1, faults=1, survived=int(not _alive(postmaster)))


def _remove_accounts(homes: list[Path]) -> None:
    """As root, each home's server ran as a system account of its own (jdgraph-<hash of the home>): remove those of
    this run's homes, and only those (other sessions' servers run as theirs). Each server stops once its last user
    is gone; an account still in use cannot be removed yet."""
    import pwd

    from jdgraph.catalog.embedded.accounts import home_hash

    for home in homes:
        name = "jdgraph-" + home_hash(home.resolve(), 8)
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        for _ in range(50):
            if subprocess.run(["userdel", name], capture_output=True).returncode == 0:
                break
            time.sleep(0.2)


def _jd_vector(catalog: Any, text: str) -> np.ndarray:
    """The vector persist adds to a centroid, recomputed from the text alone."""
    from jdgraph.graph.nodes.persist import _jd_vector
    from jdgraph.graph.sections import kra_bullets, responsibility_sentences
    from jdgraph.graph.state import State
    from jdgraph.graph.text import normalise_text

    normalised = normalise_text(text)
    state = State(jd_text=text, text=normalised, sentences=responsibility_sentences(normalised))
    bullets = [s.text for s in kra_bullets(state.sentences)]
    vectors = catalog.embeddings.embed_array(bullets) if bullets else np.zeros((0, catalog.embeddings.dimension))
    return _jd_vector(state, catalog, vectors)


def concurrency(t: Tally, catalog: Any, n: int, workers: int) -> int:
    from jdgraph import BatchItem, classify_many
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
    ap.add_argument("--only", default="", help="comma-separated parts to run (default: all), e.g. 'bombs,rebinding'")
    args = ap.parse_args()
    only = [x.strip().lower() for x in args.only.split(",") if x.strip()]

    from jdgraph.catalog.registry import open_catalog

    catalog = open_catalog("starter")
    t = Tally()
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # others may traverse it (not list it): as root, the servers of the homes in it run as accounts of their
            # own, and the planted-home case plants as another user
            Path(tmp).chmod(0o711)
            for name, step in (
                ("bad inputs", lambda: bad_inputs(t)),
                ("prompt injection", lambda: injection(t, catalog)),
                ("LLM faults", lambda: llm_faults(t)),
                ("process and database faults", lambda: process_faults(t, catalog, Path(tmp))),
                ("bad fields", lambda: bad_fields(t, catalog, Path(tmp))),
                ("document bombs", lambda: bombs(t, Path(tmp))),
                ("planted home", lambda: planted_home(t, Path(tmp))),
                ("DNS rebinding", lambda: rebinding(t, catalog)),
                ("killed postmaster", lambda: killed_postmaster(t, Path(tmp))),
                ("SIGTERM of the last user", lambda: sigterm_last_user(t, Path(tmp))),
                ("concurrency", lambda: concurrency(t, catalog, args.jds, args.workers)),
                (
                    "processes",
                    lambda: processes(
                        t, catalog, Path(tmp), args.processes, args.jds // max(1, args.processes), args.workers
                    ),
                ),
                ("parser fuzz", lambda: fuzz(t, args.fuzz)),
            ):
                if only and not any(o in name.lower() for o in only):
                    continue
                s0 = time.perf_counter()
                t.section = name
                step()
                got = t.by_section[name]
                print(f"  {name}: {time.perf_counter() - s0:.0f} s, inputs {got['inputs']}, faults {got['faults']}, "
                      f"lost {got['lost']}, double counted {got['double']}", file=sys.stderr)  # fmt: skip
    finally:
        catalog.db.drop_schema(including_prefixed=True)
        if os.geteuid() == 0:
            _remove_accounts(HOMES)
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
