"""An install without ``requirements.lock`` (what ``pip install jdgraph`` gives a user) works: the ranges in
``pyproject.toml`` must keep every resolution importable, not only the lock's (deepeval 2.9.3 leaves sentry-sdk
open, and sentry-sdk 3 made ``import deepeval`` a TypeError).

A fresh venv would download about 2 GB; instead pip resolves the project without the lock, as a user's install
does (same pip configuration and ``PIP_*`` variables, so torch's CPU wheel comes from the same find-links), and
only the packages whose resolved version differs from this venv's (installed with the lock) are installed, without
their dependencies, into an overlay put first on ``sys.path``. The overlay env then has exactly the resolved
version of every resolved package. ``--system-site-packages`` would not do: the lock's versions would win."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import distributions
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
# Resolving about 170 packages against the indexes takes 4 minutes on 2 cores, and 9 when they are busy.
PIP_TIMEOUT_S = 1200
OFFLINE_SIGNS = ("NewConnectionError", "Temporary failure in name resolution", "Network is unreachable")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pip(*args: str, timeout: int = PIP_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pip", *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT
    )


def resolve_without_lock(report: Path) -> dict[str, dict[str, Any]]:
    """What a fresh ``pip install .[dev,server]`` without ``-c requirements.lock`` would install: name -> its
    entry in pip's installation report (``metadata``, ``download_info``)."""
    done = _pip("install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report), f"{ROOT}[dev,server]")
    if done.returncode != 0 and any(sign in done.stderr for sign in OFFLINE_SIGNS):
        pytest.skip(f"the package index is unreachable: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, f"pip could not resolve the project without the lock:\n{done.stderr[-4000:]}"
    resolved = json.loads(report.read_text(encoding="utf-8"))["install"]
    return {_canonical(item["metadata"]["name"]): item for item in resolved}


def test_an_install_without_the_lock_imports_deepeval_and_runs_eval(tmp_path: Path) -> None:
    resolved = resolve_without_lock(tmp_path / "report.json")
    versions = {name: item["metadata"]["version"] for name, item in resolved.items()}
    assert "deepeval" in versions and "sentry-sdk" in versions
    installed = {_canonical(d.metadata["Name"]): d.version for d in distributions()}
    # jdgraph itself is this checkout either way (installed editable here).
    differing = sorted(n for n, v in versions.items() if n != "jdgraph" and installed.get(n) != v)
    overlay = tmp_path / "overlay"
    if differing:
        # The very files pip resolved, by URL: no second pass over the indexes.
        urls = [resolved[n]["download_info"]["url"] for n in differing]
        done = _pip("install", "--no-deps", "--quiet", "--target", str(overlay), *urls)
        assert done.returncode == 0, f"could not install {differing}:\n{done.stderr[-4000:]}"
    differing = [f"{n}=={versions[n]}" for n in differing]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(overlay), str(ROOT / "src")])}

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)

    check = (
        "import importlib.metadata as m, deepeval, jdgraph.evals.metrics, jdgraph.graph, sentry_sdk;"
        "print(m.version('sentry-sdk'), sentry_sdk.__file__)"
    )
    imported = run(sys.executable, "-c", check)
    assert imported.returncode == 0, f"resolved without the lock ({differing}):\n{imported.stderr[-4000:]}"
    sentry_version, sentry_file = imported.stdout.split()
    assert sentry_version == versions["sentry-sdk"]  # the overlay is what ran, not this venv's copy
    if f"sentry-sdk=={sentry_version}" in differing:
        assert sentry_file.startswith(str(overlay))
    # The console script with the resolved packages. `eval --help` would not import deepeval (the eval commands
    # import it lazily); `eval run` does, before it finds that the suite does not exist: exit 2 and its message,
    # where a deepeval that cannot import is a traceback (exit 1).
    jdgraph = Path(sys.executable).parent / "jdgraph"
    evaluated = run(str(jdgraph), "eval", "run", "no-such-suite")
    assert evaluated.returncode == 2, f"jdgraph eval run failed ({differing}):\n{evaluated.stderr[-4000:]}"
    assert "no suite 'no-such-suite'" in evaluated.stderr
