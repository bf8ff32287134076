"""``jdgraph ui``: the review queue, run history and run pages in a browser (Starlette + server-rendered Jinja2).

Safety, since every page shows text that came from a JD:

- Jinja2 autoescapes everything; nothing from a JD or a model is marked safe. The evidence highlighting is built
  from escaped chunks, never by inserting tags into JD text.
- A Content-Security-Policy forbids scripts altogether (the pages need none), so even a bug in escaping runs
  nothing.
- Every form post carries a CSRF token (a double-submit cookie, SameSite=Strict) and must come from this origin
  (``Origin``/``Sec-Fetch-Site``); anything else is refused with 403 before it is read.
- It binds to 127.0.0.1 unless told otherwise, and answers only requests addressed to this machine's own names
  (``Host``: 127.0.0.1, localhost, [::1], the address it binds to, ``--allowed-host``): a page on another site whose
  name the attacker re-points at 127.0.0.1 (DNS rebinding) is same-origin to the browser, and is refused with 400.
- Every query parameter is checked (a NUL, a lone surrogate, too long): a 400 page saying so, not a 500.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from jdgraph.catalog.queries import Catalog
from jdgraph.catalog.review import KINDS, STATUSES
from jdgraph.errors import InputError, JdgraphError, NotFoundError
from jdgraph.graph.schemas import ClassificationResult
from jdgraph.graph.text import is_unicode
from jdgraph.runview import (
    RunPage,
    clip,
    evidence_segments,
    evidence_window,
    llm_cost_text,
    persistence_lines,
    signal_bars,
    timings_text,
    years_text,
)

CSRF_COOKIE = "jdgraph_csrf"
_CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.filters["clip"] = clip


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if request.method == "POST" and not _same_origin(request):
            return PlainTextResponse("cross-site form posts are refused", status_code=403)
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        if CSRF_COOKIE not in request.cookies:
            response.set_cookie(CSRF_COOKIE, request.state.csrf, httponly=True, samesite="strict")
        return response


def _same_origin(request: Request) -> bool:
    if request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        return False
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return origin is None  # a missing Origin is a non-browser client; "null" is a sandboxed or opaque origin
    return urlsplit(origin).netloc == request.headers.get("host")


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_HOST_NAME = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)(:[0-9]{1,5})?")
_ANY_ADDRESS = ("0.0.0.0", "[::]", "")


def host_names(bind: str = "127.0.0.1", extra: Sequence[str] = ()) -> list[str]:
    """The ``Host`` names the page answers to (any port): the loopback names, the address it binds to when that is a
    specific one (not 0.0.0.0 or ::, which name no host), and ``extra`` (``--allowed-host``, e.g. a proxy's name).
    A name that is not a host name (or address, with or without a port) is an InputError."""
    names = list(LOOPBACK_HOSTS)
    for value in (bind, *extra):
        name = value.strip().lower()
        if name.count(":") > 1 and not name.startswith("["):
            name = f"[{name}]"  # an IPv6 address, as a Host header writes it
        match = _HOST_NAME.fullmatch(name)
        if match is None:
            raise InputError(f"{value!r} is not a host name or address", field="allowed_host")
        if match.group(1) not in _ANY_ADDRESS and match.group(1) not in names:
            names.append(match.group(1))
    return names


MAX_QUERY_CHARS = 2_000


def _bad_query(request: Request) -> str | None:
    """What is wrong with the address's path or query parameters, in words, or None. A NUL reached PostgreSQL and
    answered 500; every parameter is checked here, before any handler reads it."""
    checks = [("address", request.url.path)]
    for key, value in request.query_params.multi_items():
        label = "search text" if key == "q" else f"parameter {key!r}"
        checks += [(f"parameter name {key!r}", key), (label, value)]
    for label, text in checks:
        if "\x00" in text:
            return f"The {label} holds a NUL character (%00), which it cannot hold: remove it and try again."
        if not is_unicode(text):
            return f"The {label} is not valid UTF-8 text (it holds a lone surrogate)."
        if len(text) > MAX_QUERY_CHARS:
            return f"The {label} is {len(text):,} characters long; the limit is {MAX_QUERY_CHARS:,}."
    return None


def create_app(catalog: Catalog, *, reviewer: str, allowed_hosts: Sequence[str] | None = None) -> Starlette:
    """The web app over one open catalog. ``reviewer`` is recorded on decisions unless the form names one.
    ``allowed_hosts``: the Host names it answers to (default: the loopback names; see host_names)."""

    def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        html = _templates.get_template(name).render(
            request=request, csrf=request.state.csrf, catalog=catalog.name, **context
        )
        return HTMLResponse(html, status_code=status_code)

    async def csrf_form(request: Request) -> dict[str, str]:
        form = await request.form()
        token = str(form.get("csrf") or "")
        if not token or not secrets.compare_digest(token, request.cookies.get(CSRF_COOKIE, "")):
            raise PermissionError("missing or wrong CSRF token")
        return {k: str(v) for k, v in form.items()}

    async def index(request: Request) -> Response:
        return RedirectResponse("/review", status_code=303)

    async def review_list(request: Request) -> Response:
        q = request.query_params
        kind = q.get("kind") or None
        status = q.get("status") or "pending"
        items = catalog.review.list(
            kind=kind if kind in KINDS else None,
            status=status if status in STATUSES else None,
            search=q.get("q") or None,
            limit=200,
        )
        return render(
            request,
            "review_list.html",
            items=items,
            kinds=KINDS,
            statuses=STATUSES,
            kind=kind,
            status=status,
            q=q.get("q", ""),
            counts=catalog.review.counts(),
            message=q.get("message"),
        )

    async def review_item(request: Request) -> Response:
        item = catalog.review.get(int(request.path_params["item_id"]))
        same_kind = [i for i in catalog.review.list(kind=item.kind, status="pending", limit=50) if i.id != item.id]
        return render(
            request, "review_item.html", item=item, merge_targets=same_kind, message=request.query_params.get("message")
        )

    async def review_decide(request: Request) -> Response:
        item_id = int(request.path_params["item_id"])
        action = request.path_params["action"]
        form = await csrf_form(request)
        who = form.get("reviewer", "").strip() or reviewer
        if action == "approve":
            outcome = catalog.review.approve(
                item_id,
                reviewer=who,
                as_alias_of=form.get("as_alias_of") or None,
                role=form.get("role") or None,
                rename=form.get("rename") or None,
            )
        elif action == "reject":
            outcome = catalog.review.reject(item_id, reviewer=who, reason=form.get("reason", ""))
        elif action == "merge":
            into = form.get("into", "")
            if not into.isdigit():
                raise InputError("choose the item to merge into", field="into")
            outcome = catalog.review.merge(item_id, int(into), reviewer=who)
        else:
            return PlainTextResponse("unknown action", status_code=404)
        requested = form.get("next", "")
        back = requested if requested.startswith("/review") else f"/review/{item_id}"  # never off this site
        sep = "&" if "?" in back else "?"
        return RedirectResponse(f"{back}{sep}{urlencode({'message': outcome.message})}", status_code=303)

    async def runs_list(request: Request) -> Response:
        q = request.query_params.get("q", "").strip()
        rows = catalog.runs.list_runs(100, search=q or None)
        return render(request, "runs.html", runs=rows, q=q)

    async def run_page(request: Request) -> Response:
        run_id = catalog.runs.resolve_run_id(request.path_params["run_id"])
        record = catalog.runs.run_record(run_id)
        if record is None or record["result"] is None:
            raise NotFoundError(f"no finished run {run_id}", kind="run", key=run_id)
        result = ClassificationResult.model_validate(record["result"])
        page = RunPage(result, record["jd_text"], record["created_at"], record["updated_at"])
        return render(
            request,
            "run.html",
            page=page,
            r=result,
            segments=evidence_segments(page.jd_text or "", result.skills),
            evidence=evidence_window,
            persistence=persistence_lines(result.persistence),
            timings=timings_text(result.node_timings_ms),
            cost=llm_cost_text(result),
            bars=signal_bars(result),
            years=years_text(result),
        )

    async def catalog_search(request: Request) -> Response:
        q = request.query_params.get("q", "").strip()
        hits = []
        if q:
            match = catalog.lookup_skill(q, accept=None)
            hits = [c for c in match.candidates] if match.candidates else []
            if not hits:
                hits = catalog.search_skills(q, k=10)
        return render(request, "catalog.html", q=q, hits=hits)

    async def on_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, PermissionError):
            return PlainTextResponse(str(exc), status_code=403)
        status = 404 if isinstance(exc, NotFoundError) else 400 if isinstance(exc, InputError) else 409
        message = exc.message if isinstance(exc, JdgraphError) else str(exc)
        return render(request, "error.html", status_code=status, message=message)

    async def add_csrf(request: Request, call_next: RequestResponseEndpoint) -> Response:
        request.state.csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        return await call_next(request)

    async def check_query(request: Request, call_next: RequestResponseEndpoint) -> Response:
        problem = _bad_query(request)
        if problem is not None:
            return render(request, "error.html", status_code=400, message=problem)
        return await call_next(request)

    routes = [
        Route("/", index),
        Route("/review", review_list),
        Route("/review/{item_id:int}", review_item),
        Route("/review/{item_id:int}/{action:str}", review_decide, methods=["POST"]),
        Route("/runs", runs_list),
        Route("/runs/{run_id:str}", run_page),
        Route("/catalog", catalog_search),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            # First (outermost): a request under a name that is not this machine's gets no page and no CSRF cookie.
            Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts or host_names())),
            Middleware(BaseHTTPMiddleware, dispatch=add_csrf),
            Middleware(SecurityHeaders),
            Middleware(BaseHTTPMiddleware, dispatch=check_query),
        ],
        exception_handlers={JdgraphError: on_error, PermissionError: on_error},
    )
