"""Record/replay of LLM calls for evaluations, served through the real client path.

A :class:`CassetteServer` is a local OpenAI-compatible endpoint. The graph's ChatOpenAI clients point at it
(``OPENAI_BASE_URL``) and send the prompt's ``name@version`` and the repeat index as headers. A recording is keyed
by (model, prompt name@version, hash of the rendered input: messages, tools and response format, repeat index).

- ``replay``: answers from the cassette. A request with no recording gets HTTP 404 with a message naming the
  prompt; the runner reports those cases as unrecorded instead of scoring the deterministic fallback.
- ``record``: forwards to the live upstream, stores each successful answer, and passes errors through without
  storing them (an error is never recorded as an answer). A request already in the cassette is answered from it,
  so a stopped record run resumes where it was.

Cassettes are JSONL files, one recording per line, appended in record mode and read whole in replay mode.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

from jdgraph.errors import ConfigError

NO_RECORDING = "jdgraph cassette: no recording"


@dataclass(frozen=True)
class CassetteKey:
    model: str
    prompt: str
    input_hash: str
    repeat: int

    def as_str(self) -> str:
        return f"{self.model}|{self.prompt}|{self.input_hash}|{self.repeat}"

    @classmethod
    def from_str(cls, text: str) -> CassetteKey:
        # From the right: a model name may hold "|", the other three parts never do.
        model, prompt, digest, repeat = text.rsplit("|", 3)
        return cls(model, prompt, digest, int(repeat))


def input_hash(body: dict[str, Any]) -> str:
    rendered = {k: body.get(k) for k in ("messages", "tools", "tool_choice", "response_format")}
    return hashlib.sha256(json.dumps(rendered, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


class CassetteServer:
    def __init__(
        self,
        path: Path,
        mode: Literal["replay", "record"],
        *,
        upstream: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        if mode == "record" and not upstream:
            raise ConfigError("recording needs the live model's base URL (OPENAI_BASE_URL or the OpenAI API)")
        self.path = Path(path)
        self.mode = mode
        self.upstream = (upstream or "").rstrip("/")
        self.api_key = api_key
        # The upstream gets the client's own timeout: a client that gave up must not leave the server generating
        # (and then recording) an answer nobody reads.
        self.timeout_s = timeout_s
        self.abandoned = 0
        self.recordings: dict[str, dict[str, Any]] = {}
        self.misses: Counter[str] = Counter()  # prompt name@version → unanswered requests
        self.hits = 0
        self.recorded = 0
        self._lock = threading.Lock()
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    entry = json.loads(line)
                    self.recordings[entry["key"]] = entry["response"]
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.loads(raw or b"{}")
                key = CassetteKey(
                    model=str(body.get("model")),
                    prompt=self.headers.get("X-Jdgraph-Prompt", "unknown@unknown"),
                    input_hash=input_hash(body),
                    repeat=int(self.headers.get("X-Jdgraph-Repeat", "0") or 0),
                )
                status, payload = server._answer(key, body, raw, dict(self.headers))
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    # jdgraph retries on its own terms; "no" keeps the client library from retrying a 502 too.
                    self.send_header("x-should-retry", "false")
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    with server._lock:  # the client left (its timeout): nothing to answer, nothing to trace
                        server.abandoned += 1

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True, name="cassette-server")
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def _answer(
        self, key: CassetteKey, body: dict[str, Any], raw: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        if body.get("stream"):
            return 400, {"error": {"message": "jdgraph cassette: streaming calls are not recorded", "type": "bad"}}
        # A recorded request is answered from the cassette in both modes: replay, and a record run that was stopped
        # and resumes (what is recorded is not asked again).
        with self._lock:
            known = self.recordings.get(key.as_str())
            if known is not None:
                self.hits += 1
            elif self.mode == "replay":
                self.misses[key.prompt] += 1
        if known is not None:
            return 200, known
        if self.mode == "replay":
            message = f"{NO_RECORDING} for {key.prompt} (model {key.model}, repeat {key.repeat})"
            return 404, {"error": {"message": message, "type": "not_found", "code": "no_recording"}}
        started = time.monotonic()
        request = urllib.request.Request(
            f"{self.upstream}/chat/completions",
            data=raw,
            headers={
                "Content-Type": "application/json",
                "Authorization": headers.get("Authorization") or f"Bearer {self.api_key or ''}",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
                payload = json.loads(reply.read())
        except urllib.error.HTTPError as exc:  # passed through, never stored
            return exc.code, json.loads(exc.read() or b"{}") or {"error": {"message": str(exc)}}
        except (urllib.error.URLError, TimeoutError) as exc:
            return 502, {"error": {"message": f"upstream unreachable: {exc}", "type": "upstream"}}
        if time.monotonic() - started > self.timeout_s:
            # The client's timeout has passed: it already fell back, so this answer is not what it saw.
            with self._lock:
                self.abandoned += 1
            return 504, {"error": {"message": "upstream answered after the client's timeout", "type": "upstream"}}
        with self._lock:
            self.recordings[key.as_str()] = payload
            self.recorded += 1
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"key": key.as_str(), "response": payload}, ensure_ascii=False) + "\n")
        return 200, payload

    def recorded_prompts(self) -> list[str]:
        """The prompt refs (name@version) the cassette holds recordings for."""
        with self._lock:
            return sorted({CassetteKey.from_str(k).prompt for k in self.recordings})

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> CassetteServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
