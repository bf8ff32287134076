"""Graph state: small dataclasses whose fields hold the typed values the nodes exchange (the pydantic models of
:mod:`jdgraph.graph.schemas`, the extractor's dataclasses), so no node re-validates what another wrote. LangGraph's
checkpoint serializer stores them as they are, and reads back only the classes :data:`STATE_TYPES` lists (found
from these annotations)."""

from __future__ import annotations

import dataclasses
import enum
import operator
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel

from jdgraph.graph.extract import SkillFinding
from jdgraph.graph.schemas import (
    Decision,
    Enrichment,
    LLMCallRecord,
    ParsedJD,
    PersistOutcome,
    QueuedItem,
    ResolvedSkill,
    RoleSignal,
)
from jdgraph.graph.text import Sentence, check_field, check_input, check_metadata


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
    sentences: list[Sentence] = field(default_factory=list)
    """parse: the text's responsibility sentences (outside the company blurb, perks, offer and process sections),
    with their offsets and sections (:func:`jdgraph.graph.sections.responsibility_sentences`)."""
    parsed: ParsedJD | None = None
    """parse (match adds the domain): the JD's structured fields."""
    extracted: list[SkillFinding] = field(default_factory=list)
    """extract: skill findings (name, is_primary, mentions with evidence, extracted_by)."""
    skills: list[ResolvedSkill] = field(default_factory=list)
    """match: the findings resolved to catalog skills (or proposed as new)."""
    role_signals: list[RoleSignal] = field(default_factory=list)
    """match: catalog roles, best first."""
    collision: dict[str, Any] = field(default_factory=dict)
    """match: why the choice is contested (empty when it is not); stored on the run as this JSON."""
    decision: Decision | None = None
    """decide / adjudicate: the chosen role."""
    enrichment: Enrichment | None = None
    """match: nature of work and AI index."""
    queued: list[QueuedItem] = field(default_factory=list)
    """persist: the review proposals."""
    persistence: list[PersistOutcome] = field(default_factory=list)
    """persist: what was written."""
    llm_calls: Annotated[list[LLMCallRecord], operator.add] = field(default_factory=list)
    """Every model call, appended by the node that made it."""
    timings_ms: Annotated[dict[str, float], merge_dicts] = field(default_factory=dict)
    models: Annotated[dict[str, str], merge_dicts] = field(default_factory=dict)
    """extract: the trained components the run used (which path it took), for the result and the run record."""
    warnings: Annotated[list[str], operator.add] = field(default_factory=list)


def value_types(root: type) -> tuple[type, ...]:
    """Every class a value of ``root`` can hold (pydantic models, dataclasses, enums), found through its fields'
    annotations, ``root`` first."""
    found: dict[type, None] = {}

    def visit(tp: object) -> None:
        for arg in typing.get_args(tp):
            visit(arg)
        if typing.get_origin(tp) is not None or not isinstance(tp, type) or tp in found:
            return
        if issubclass(tp, BaseModel):
            found[tp] = None
            for f in tp.model_fields.values():
                visit(f.annotation)
        elif dataclasses.is_dataclass(tp):
            found[tp] = None
            for hint in typing.get_type_hints(tp).values():
                visit(hint)
        elif issubclass(tp, enum.Enum):
            found[tp] = None

    visit(root)
    return tuple(found)


STATE_TYPES = value_types(State)
"""The classes a checkpoint of a run may hold: the checkpointer's allowlist (anything else is not read back)."""
