"""The LangGraph server path: `langgraph dev` (the `[server]` extra) serves the graph of `langgraph.json` on
127.0.0.1, offline; a client classifies a JD through `langgraph_sdk` (wait and stream), a bad input is a failed
run, and when the server stops, the embedded PostgreSQL it started stops too.

The server gets its own JDGRAPH_HOME, so that the embedded database has no other user and its stop is observable.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ports import free_port
from tests.rust_jd import RUST_JD

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
LANGGRAPH = Path(sys.executable).parent / "langgraph"


@pytest.fixture(scope="module")
def server(open_tmp_root: Path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    if not LANGGRAPH.exists() and shutil.which("langgraph") is None:
        pytest.fail('langgraph-cli is not installed: pip install -e ".[dev,server]"')
    home = open_tmp_root / "server-home"
    home.mkdir()
    port = free_port()
    env = {
        **os.environ,
        "JDGRAPH_HOME": str(home),
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGSMITH_TRACING": "false",
        "JDGRAPH_DB_SCHEMA": "jdgraph",
        "PYTHONUNBUFFERED": "1",  # its log is read while it starts (the port it took)
    }
    env.pop("DATABASE_URL", None)
    log = (home / "server.log").open("wb")
    binary = str(LANGGRAPH if LANGGRAPH.exists() else "langgraph")
    proc = subprocess.Popen(
        [binary, "dev", "--host", "127.0.0.1", "--port", str(port), "--no-browser", "--no-reload"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        # A port taken between free_port() and the server's bind is not an error to langgraph dev: it serves on
        # another and says so in a warning, and /ok on the port asked for might be someone else's.
        started = (home / "server.log").read_text("utf-8", "replace")
        moved = re.search(r"Port \d+ is already in use, using port (\d+)", started)
        if moved:
            url = f"http://127.0.0.1:{moved.group(1)}"
        try:
            with urllib.request.urlopen(f"{url}/ok", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"langgraph dev exited: {(home / 'server.log').read_text(errors='replace')[-3000:]}")
            time.sleep(1)
    else:
        pytest.fail("langgraph dev did not answer /ok within 180 s")
    yield url, home, proc
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    log.close()


def test_classify_through_the_sdk_wait_and_stream(server) -> None:  # type: ignore[no-untyped-def]
    from langgraph_sdk import get_sync_client

    url, home, _ = server
    client = get_sync_client(url=url)
    out = client.runs.wait(None, "jdgraph", input={"jd_text": RUST_JD})  # default context, no run_id
    assert isinstance(out, dict) and "__error__" not in out, out
    result = out["result"]
    assert result["decision"]["chosen_role"]["slug"] == "systems-software-engineer"
    assert any(p["kind"] == "run" and p["outcome"] == "saved" for p in result["persistence"])
    nodes = [
        next(iter(chunk.data))
        for chunk in client.runs.stream(
            None, "jdgraph", input={"jd_text": RUST_JD}, context={"persist": False}, stream_mode="updates"
        )
        if chunk.event == "updates" and isinstance(chunk.data, dict) and chunk.data
    ]
    assert {"parse", "extract", "match", "persist"} <= set(nodes)
    listed = subprocess.run(
        [sys.executable, "-m", "jdgraph.cli", "runs", "show", result["run_id"], "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "JDGRAPH_HOME": str(home), "JDGRAPH_DB_SCHEMA": "jdgraph"},
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr  # the run was persisted in the server's catalog


def test_the_readmes_sdk_snippet_runs_against_the_server(server, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import contextlib
    import io

    from tests.integration.test_readme import ROOT, readme_python_blocks

    [block] = [b for b in readme_python_blocks() if "get_sync_client" in b]
    monkeypatch.chdir(ROOT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(block.replace("http://127.0.0.1:2024", server[0]), {"__name__": "readme"})
    assert out.getvalue().strip() == "systems-software-engineer"


def test_a_bad_input_is_a_failed_run(server) -> None:  # type: ignore[no-untyped-def]
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=server[0])
    thread = client.threads.create()
    run = client.runs.create(thread["thread_id"], "jdgraph", input={"jd_text": "x", "run_id": "not-a-uuid"})
    client.runs.join(thread["thread_id"], run["run_id"])
    assert client.runs.get(thread["thread_id"], run["run_id"])["status"] == "error"


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"jd_text": 123}, "the job description must be a string, got int"),
        ({"jd_text": RUST_JD, "title": "Rust\x00Dev"}, "the title holds a NUL character"),
        ({"jd_text": "x", "run_id": "not-a-uuid"}, "run_id 'not-a-uuid' is not a UUID"),
    ],
    ids=["number as text", "NUL title", "bad run id"],
)
def test_a_bad_input_fails_the_run_and_the_client_sees_why(server, state, message) -> None:  # type: ignore[no-untyped-def]
    """The client got "An internal error occurred" (the server shows only builtin errors' messages), or psycopg's
    DataError / a TypeError for a NUL title or a number as the text; the message of jdgraph's InputError now."""
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=server[0])
    with pytest.raises(Exception, match=re.escape(f"InputError: {message}")):  # the SDK raises the run's error
        client.runs.wait(None, "jdgraph", input=state)
    out = client.runs.wait(None, "jdgraph", input=state, raise_error=False)
    assert out["__error__"]["error"] == "InputError" and message in out["__error__"]["message"], out


def test_stopping_the_server_stops_its_embedded_database(server) -> None:  # type: ignore[no-untyped-def]
    """SIGTERM to `langgraph dev` (what a service manager sends): uvicorn shuts down gracefully, then raises the
    signal again at its default action and dies without atexit hooks (Ctrl-C's SIGINT ends in KeyboardInterrupt,
    which runs them); the embedded server's watcher stops the postmaster (in a session of its own, pg_ctl's)."""
    import psutil

    _, home, proc = server
    pid_file = home / "pgdata" / "postmaster.pid"
    postmaster = int(pid_file.read_text().splitlines()[0])
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)
    deadline = time.time() + 30
    while (pid_file.exists() or psutil.pid_exists(postmaster)) and time.time() < deadline:
        time.sleep(0.5)
    assert not pid_file.exists(), (home / "server.log").read_text(errors="replace")[-3000:]
    assert not psutil.pid_exists(postmaster)
