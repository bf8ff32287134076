"""What identifies an input and a run: one home for the hashes behind idempotency.

- ``input_hash``: the normalised JD text. A review proposal or a centroid counts a text once, whatever run it
  came through.
- ``input_id``: the caller's id for an input (a batch line's ``id``), or by default a hash of the text and every
  option that changes the answer (title, company, catalog, models). Stored on the run.
- ``batch_run_id``: a batch line's run id, derived from its input id and content, so a rerun of a killed batch
  reaches the same runs (the store writes nothing twice) and ``--resume`` can skip what is saved. An edited line
  (same id, new text) is a new run, not a conflict.
"""

from __future__ import annotations

import hashlib
import json
import uuid

from jdgraph.context import Context
from jdgraph.errors import InputError

RUN_ID_NAMESPACE = uuid.UUID("6f1c1f9e-2d4b-5c7a-9e61-0b7d3a2c4e58")


def input_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def content_key(text: str, title: str | None, company: str | None, ctx: Context) -> str:
    """A hash of the input text and the options that change the answer."""
    options = {
        "text": text,
        "title": title,
        "company": company,
        "catalog": ctx.catalog,
        "models": [ctx.parse_model, ctx.extract_model, ctx.adjudicate_model, ctx.enrich_model],
    }
    return "sha256:" + hashlib.sha256(json.dumps(options, sort_keys=True).encode("utf-8")).hexdigest()[:32]


def batch_run_id(input_id: str, key: str) -> str:
    return str(uuid.uuid5(RUN_ID_NAMESPACE, f"{input_id}\x00{key}"))


def run_id_of(given: str | None) -> str:
    """The run's id: the caller's (a UUID, normalised) or, when none is given (a LangGraph server run with the
    default input, ``graph.invoke({"jd_text": ...})``), a fresh one. Parse sets it in the state once, so a
    resumed or retried persist keeps it."""
    if not given or not str(given).strip():
        return str(uuid.uuid4())
    try:
        return str(uuid.UUID(str(given).strip()))
    except ValueError:
        raise InputError(f"run_id {given!r} is not a UUID", field="run_id") from None
