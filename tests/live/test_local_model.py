"""Live smoke test against a real local model (llama.cpp's llama-server + SmolLM2-135M-Instruct), outside CI:

    JDGRAPH_LIVE_LLM=1 python -m pytest tests/live -q

It needs the built server and the weights (``jdgraph llm build``; the weights download on first use) and runs only
when asked. Checks what a real small model breaks: every step's answer is valid structured output or a clear,
recorded fallback; no call runs past its step's token cap; adjudication either calls a tool or falls back
without one; the run completes.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest

import jdgraph
from tests.ports import free_port
from tests.rust_jd import RUST_JD, SHARED_TITLE_JD

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not os.environ.get("JDGRAPH_LIVE_LLM"), reason="live model test: set JDGRAPH_LIVE_LLM=1"),
]
CAPS = {"parse": 500, "extract": 700, "adjudicate": 300, "enrich": 400}


@pytest.fixture(scope="module")
def local_server(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[str]:
    from jdgraph import localmodel
    from jdgraph.errors import ConfigError

    try:
        localmodel.server_binary(build=False)
    except ConfigError as exc:
        pytest.skip(str(exc))
    port = free_port()
    proc = subprocess.Popen(localmodel.serve_command(port=port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        localmodel.wait_ready(port, proc=proc)
        monkeypatch_module.setenv("JDGRAPH_LOCAL_BASE_URL", f"http://127.0.0.1:{port}/v1")
        yield f"local:{localmodel.MODELS['smollm2'].alias}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_every_step_on_a_real_small_model(catalog, local_server: str) -> None:
    collision = SHARED_TITLE_JD
    for text in (RUST_JD, collision):
        result = jdgraph.classify(
            text,
            run_id=str(uuid.uuid4()),
            persist=False,
            parse_model=local_server,
            extract_model=local_server,
            adjudicate_model=local_server,
            enrich_model=local_server,
            llm_timeout_s=180,
            **{f"{k}_max_tokens": v for k, v in CAPS.items()},
        )
        # A decision either way: a catalog role, or the model's "none fits" with the nearest role named.
        assert result.status == "completed" and result.decision.role_or_nearest.slug
        calls = result.llm_calls
        assert {"parse", "extract", "enrich"} <= {c.node for c in calls}
        for c in calls:
            assert c.output_tokens <= CAPS[c.node], c  # no runaway generation
            assert c.outcome in ("ok", "repaired", "fallback", "error"), c
        for node in ("parse", "extract", "enrich"):
            last = [c for c in calls if c.node == node][-1]
            # Valid structured output, or a fallback that the run says out loud.
            assert last.outcome in ("ok", "repaired") or any(w.startswith(f"{node}:") for w in result.warnings)
        if result.decision.route == "adjudicated":
            assert result.decision.decided_by in ("adjudicator-llm", "adjudicator-rules")
            assert any(c.node == "adjudicate" for c in calls)
