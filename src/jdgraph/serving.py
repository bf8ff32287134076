"""A production route other services call: ``jdgraph serve --workers N`` (uvicorn worker processes, one
PostgreSQL shared by all, runs checkpointed by the Postgres checkpointer as every persisted run is).

Endpoints (JSON):

- ``POST /classify`` ``{"text", "title"?, "company"?, "run_id"?, "input_id"?, "persist"?}`` → the
  ClassificationResult. Idempotent with a ``run_id`` (a retry after a timeout writes nothing twice). Bad input is
  400 with the message, a catalog or model problem 422, the database 503 (with ``Retry-After``), an LLM 502.
- ``GET /healthz``: the process answers (liveness).
- ``GET /readyz``: the catalog is open, its database answers, the models are loaded (readiness): 503 until then,
  and while the database does not answer.

Each worker opens the catalog, the embedding model and the span tagger once, at start (a worker is not ready
before), and keeps them. On SIGTERM uvicorn stops accepting, lets in-flight requests finish (up to
``--graceful-timeout``), then the lifespan's end closes the pools and releases the embedded server (the last
process using it stops it).

The LangGraph server (``langgraph dev``) stays for LangGraph clients and Studio; this route skips its in-memory queue
(about 0.9 s a call).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from jdgraph.api import classify, run_context
from jdgraph.errors import CatalogError, ConfigError, DatabaseError, EmbeddingError, InputError, JdgraphError, LLMError

MAX_BODY_BYTES = 2_000_000  # a JD is text: 2 MB is far past any real one, and bounds what a request can make us read
_FIELDS = {"text": str, "title": str, "company": str, "run_id": str, "input_id": str, "persist": bool}


def _status(exc: JdgraphError) -> int:
    if isinstance(exc, InputError):
        return 400
    if isinstance(exc, DatabaseError):
        return 503
    if isinstance(exc, LLMError):
        return 502
    if isinstance(exc, CatalogError | ConfigError | EmbeddingError):
        return 422
    return 500


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    headers = {"Retry-After": "5"} if status == 503 else None
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


class Service:
    """One worker's state: the run context opened at start, and the runs in flight."""

    def __init__(self, catalog: str | None) -> None:
        self.catalog = catalog
        self.context: dict[str, Any] = {}
        self.ready = False
        self.in_flight = 0

    def open(self) -> None:
        ctx = run_context(**({"catalog": self.catalog} if self.catalog else {}))
        ctx.resolve_catalog().embeddings.embed_array(["warm up the embedding model"])
        self.context = {"catalog_reader": ctx.catalog_reader, "span_tagger_reader": ctx.span_tagger_reader}
        self.ready = True

    async def classify(self, request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _error(413, f"the request body is over {MAX_BODY_BYTES} bytes")
        try:
            payload = await run_in_threadpool(_parse, body)
        except InputError as exc:
            return _error(400, exc.message, field=exc.field)
        self.in_flight += 1
        try:
            result = await run_in_threadpool(lambda: classify(payload.pop("text"), **payload, **self.context))
        except JdgraphError as exc:
            return _error(_status(exc), exc.message, kind=type(exc).__name__)
        finally:
            self.in_flight -= 1
        return JSONResponse(result.model_dump(mode="json"))

    async def healthz(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> JSONResponse:
        if not self.ready:
            return _error(503, "starting")
        try:
            await run_in_threadpool(self._ping)
        except DatabaseError as exc:
            return _error(503, exc.message)
        return JSONResponse({"status": "ready", "in_flight": self.in_flight})

    def _ping(self) -> None:
        self.context["catalog_reader"].db.server_info()


def _parse(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"the request body is not JSON ({exc})") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("text"), str):
        raise InputError('expected a JSON object with "text" (a string)', field="text")
    unknown = sorted(set(payload) - set(_FIELDS))
    if unknown:
        raise InputError(f"unknown field(s): {', '.join(unknown)}", field=unknown[0])
    for name, kind in _FIELDS.items():
        if name in payload and payload[name] is not None and not isinstance(payload[name], kind):
            raise InputError(f'"{name}" must be a {kind.__name__}', field=name)
    return payload


def create_app(catalog: str | None = None) -> Starlette:
    service = Service(catalog)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(service.open)  # the models and the catalog load before the worker is ready
        try:
            yield
        finally:
            # uvicorn has stopped accepting and let in-flight requests finish; close what the worker opened (the
            # embedded server is released by the last process using it, at exit).
            reader = service.context.get("catalog_reader")
            if reader is not None:
                await run_in_threadpool(reader.db.close)

    app = Starlette(
        routes=[
            Route("/classify", service.classify, methods=["POST"]),
            Route("/healthz", service.healthz, methods=["GET"]),
            Route("/readyz", service.readyz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.service = service
    return app


def app_from_env() -> Starlette:
    """The factory uvicorn's workers call (``--factory``): the catalog comes from ``JDGRAPH_CATALOG``."""
    return create_app()
