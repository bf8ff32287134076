"""``jdgraph serve``: two uvicorn workers on loopback sharing the embedded PostgreSQL. Ready only once the models are
loaded; a classify is idempotent by run id across workers; bad requests are 400 with the message; SIGTERM lets an
in-flight run finish and save; a plan of more connections than the server allows is refused before starting."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest

from tests.rust_jd import RUST_JD

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _request(url: str, body: Any = None, raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _runs(catalog: Any, run_id: str) -> int:
    with catalog.db.connection() as conn:
        row = conn.execute("SELECT count(*) AS n FROM runs WHERE run_id::text = %s", (run_id,)).fetchone()
    return int(row["n"])


@pytest.fixture
def server(catalog):  # type: ignore[no-untyped-def]
    port = _free_port()
    env = {**os.environ, "JDGRAPH_DB_SCHEMA": catalog.db.schema, "JDGRAPH_DB_POOL_MAX": "4"}
    proc = subprocess.Popen([sys.executable, "-m", "jdgraph.cli", "serve", "--workers", "2", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            if _request(f"{base}/readyz")[0] == 200:
                break
        except (urllib.error.URLError, ConnectionError):
            pass
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the server never became ready"
        time.sleep(1)
    yield base, proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)


def test_served_classify_is_idempotent_and_bad_requests_say_why(server, catalog) -> None:  # type: ignore[no-untyped-def]
    base, _ = server
    assert _request(f"{base}/healthz") == (200, {"status": "ok"})
    run_id = str(uuid.uuid4())
    status, first = _request(f"{base}/classify", {"text": RUST_JD, "run_id": run_id})
    assert status == 200 and first["run_id"] == run_id and first["decision"]["chosen_role"]
    # The same run id again (a client's retry, maybe on the other worker): the same run, written once.
    assert _request(f"{base}/classify", {"text": RUST_JD, "run_id": run_id})[1]["run_id"] == run_id
    assert _runs(catalog, run_id) == 1
    assert _request(f"{base}/classify", raw=b"{not json")[0] == 400
    status, said = _request(f"{base}/classify", {"text": "   "})
    assert status == 400 and said["error"]
    status, said = _request(f"{base}/classify", {"text": RUST_JD, "tenant": "x"})
    assert status == 400 and "unknown field" in said["error"]


def test_sigterm_lets_an_in_flight_run_finish_and_save(server, catalog) -> None:  # type: ignore[no-untyped-def]
    base, proc = server
    run_id = str(uuid.uuid4())
    answer: dict[str, Any] = {}

    def call() -> None:
        body = {"text": RUST_JD + "\nOn call.", "run_id": run_id}
        answer["status"], answer["body"] = _request(f"{base}/classify", body)

    client = threading.Thread(target=call)
    client.start()
    time.sleep(0.3)  # the request is in a worker
    proc.send_signal(signal.SIGTERM)
    client.join(timeout=120)
    assert answer.get("status") == 200, answer
    assert proc.wait(timeout=120) == 0
    assert _runs(catalog, run_id) == 1


def test_more_connections_than_the_server_allows_is_refused_before_starting(catalog) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "JDGRAPH_DB_SCHEMA": catalog.db.schema, "JDGRAPH_DB_POOL_MAX": "64"}
    done = subprocess.run([sys.executable, "-m", "jdgraph.cli", "serve", "--workers", "64", "--port",
                           str(_free_port())], env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "64 workers × (a pool of 64 + 4 for checkpoints) = 4352 connections" in done.stderr, done.stderr
    assert "allows" in done.stderr
