"""A local OpenAI-compatible chat-completions server for tests: the real ChatOpenAI client talks to it.

Each request pops the next scripted reply: {"json": obj} (structured output in message.content),
{"content": str}, {"tool_calls": [{"name", "args"}]}, {"status": 429|500, "message": str}, {"delay": seconds, ...}.
It can also misbehave like a real small model: ``reject_json_schema = True`` answers every json_schema request
with llama-cpp-python's HTTP 500; {"loop": True} generates until the request's token cap (finish_reason "length").
Streaming requests (stream: true) get SSE chunks. Every request body is kept in ``requests``.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class StubOpenAI:
    def __init__(self) -> None:
        self.script: list[dict[str, Any]] = []
        self.default: dict[str, Any] | None = None
        self.reject_json_schema = False
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with stub._lock:
                    stub.requests.append(body)
                    if stub.reject_json_schema and (body.get("response_format") or {}).get("type") == "json_schema":
                        reply = {
                            "status": 500,
                            "message": "1 validation error for CreateChatCompletionRequest\nresponse_format.type\n"
                            "  Input should be 'text' or 'json_object' [type=literal_error]",
                        }
                    else:
                        reply = stub.script.pop(0) if stub.script else (stub.default or {"content": "{}"})
                if reply.get("delay"):
                    time.sleep(reply["delay"])
                if reply.get("status"):
                    self.send_response(reply["status"])
                    self.send_header("Content-Type", "application/json")
                    self.send_header("retry-after-ms", "10")
                    self.end_headers()
                    error = {"message": reply.get("message", "stub error"), "type": "rate_limit"}
                    self.wfile.write(json.dumps({"error": error}).encode())
                    return
                message: dict[str, Any] = {"role": "assistant", "content": None}
                cap = int(body.get("max_completion_tokens") or body.get("max_tokens") or 100_000)
                if reply.get("loop"):
                    reply = {"content": '{"skills": [' + '{"name": "loop"}, ' * cap, "tokens": cap}
                if "json" in reply:
                    message["content"] = json.dumps(reply["json"])
                elif "content" in reply:
                    message["content"] = reply["content"]
                if "tool_calls" in reply:
                    message["tool_calls"] = [
                        {
                            "id": f"call_{i}",
                            "type": "function",
                            "function": {"name": c["name"], "arguments": json.dumps(c["args"])},
                        }
                        for i, c in enumerate(reply["tool_calls"])
                    ]
                out_tokens = int(reply.get("tokens", 30))
                usage = {"prompt_tokens": 120, "completion_tokens": out_tokens, "total_tokens": 120 + out_tokens}
                if body.get("stream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    delta = {"role": "assistant", "content": message["content"] or ""}
                    if message.get("tool_calls"):
                        delta["tool_calls"] = [{**tc, "index": i} for i, tc in enumerate(message["tool_calls"])]
                    for chunk in (
                        {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
                        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage},
                    ):
                        payload = {
                            "id": "chatcmpl-stub",
                            "object": "chat.completion.chunk",
                            "created": 0,
                            "model": body.get("model", "stub"),
                            **chunk,
                        }
                        self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
                    self.wfile.write(b"data: [DONE]\n\n")
                    return
                out = {
                    "id": "chatcmpl-stub",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body.get("model", "stub"),
                    "choices": [
                        {
                            "index": 0,
                            "message": message,
                            "finish_reason": "tool_calls"
                            if message.get("tool_calls")
                            else "length"
                            if "tokens" in reply
                            else "stop",
                        }
                    ],
                    "usage": usage,
                }
                data = json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
