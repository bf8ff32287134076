"""Graph state: small dataclasses. Pydantic is kept for the edges (LLM outputs, the public result)."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Annotated, Any

from jdgraph.graph.text import check_field, check_input, check_metadata


def merge_dicts(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    return {**left, **right}


@dataclass
class InputState:
    """What a caller gives the graph."""

    jd_text: str = ""
    """The job description: plain text, Markdown or HTML."""
    title: str | None = None
    """The posting's title, when the caller knows it separately from the text."""
    company: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    run_id: str = ""
    """Idempotency key (a UUID): persisting the same run id twice writes nothing twice. Empty: parse assigns a
    fresh one."""
    input_id: str = ""
    """The caller's id for this input (a batch line's ``id``), stored on the run. Empty: parse sets a hash of the
    text and options (:func:`jdgraph.graph.identity.content_key`)."""

    def checked(self) -> InputState:
        """This input with every field checked by the one set of checks of :mod:`jdgraph.graph.text` (the JD as
        text; title, company and input id as short storable text; metadata as JSON): a bad field is an InputError
        naming it, raised before anything runs or is written. Without it a NUL in the title, a lone surrogate in
        the input id or a set in the metadata passed every step and failed the run's insert or checkpoint with a
        raw driver or serializer error."""
        return InputState(
            jd_text=check_input(self.jd_text),
            title=check_field(self.title, "title"),
            company=check_field(self.company, "company"),
            metadata=check_metadata(self.metadata),
            run_id=self.run_id,
            input_id=check_field(self.input_id, "input_id") or "",
        )


@dataclass
class OutputState:
    result: dict[str, Any] | None = None
    """A ClassificationResult as JSON-ready dict."""


@dataclass
class State(InputState, OutputState):
    """Everything the nodes exchange. Each field is written by one node (its docstring names it)."""

    text: str = ""
    """parse: the JD converted to plain text (HTML stripped); evidence offsets refer to it."""
    parsed: dict[str, Any] = field(default_factory=dict)
    """parse: ParsedJD."""
    extracted: list[dict[str, Any]] = field(default_factory=list)
    """extract: raw skill mentions (name, is_primary, evidence, extracted_by)."""
    skills: list[dict[str, Any]] = field(default_factory=list)
    """match: ResolvedSkill list."""
    role_signals: list[dict[str, Any]] = field(default_factory=list)
    """match: RoleSignal list, best first."""
    new_kras: list[dict[str, Any]] = field(default_factory=list)
    """match: responsibility sentences with no close KRA."""
    collision: dict[str, Any] = field(default_factory=dict)
    """match: why the choice is contested (empty when it is not)."""
    decision: dict[str, Any] = field(default_factory=dict)
    """decide / adjudicate: Decision."""
    enrichment: dict[str, Any] = field(default_factory=dict)
    queued: list[dict[str, Any]] = field(default_factory=list)
    persistence: list[dict[str, Any]] = field(default_factory=list)
    llm_calls: Annotated[list[dict[str, Any]], operator.add] = field(default_factory=list)
    """Every model call, appended by the node that made it."""
    timings_ms: Annotated[dict[str, float], merge_dicts] = field(default_factory=dict)
    warnings: Annotated[list[str], operator.add] = field(default_factory=list)
