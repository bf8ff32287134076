"""The graph: parse → extract → match → (adjudicate | decide) → persist, with a reject shortcut.

Routers return ``Literal`` targets so ``get_graph()`` and LangGraph Studio draw every edge.
"""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END, START, StateGraph

from jdgraph.context import Context
from jdgraph.graph.nodes import adjudicate, decide, extract, match, parse, persist
from jdgraph.graph.state import InputState, OutputState, State


def route_after_parse(state: State) -> Literal["extract", "persist"]:
    """A text the gate rejected goes straight to persist (which records the rejection) and ends."""
    jd_type = state.parsed.jd_type if state.parsed else None
    if jd_type == "reject":
        return "persist"
    if jd_type == "pass":
        return "extract"
    raise ValueError(f"parse produced no jd_type: {state.parsed!r}")


def route_after_match(state: State) -> Literal["adjudicate", "decide"]:
    """Contested choices (shared title, close call, title vs. KRA/skill disagreement) go to the adjudicator."""
    return "adjudicate" if state.collision else "decide"


def build(context_schema: type[Context] = Context) -> StateGraph[State, Context, InputState, OutputState]:
    """The graph's builder. ``context_schema`` is :class:`Context` or a subclass of it (the server entry's opens
    the run's catalog: :mod:`jdgraph.server`)."""
    builder = StateGraph(State, input_schema=InputState, output_schema=OutputState, context_schema=context_schema)
    builder.add_node("parse", parse)
    builder.add_node("extract", extract)
    builder.add_node("match", match)
    builder.add_node("decide", decide)
    builder.add_node("adjudicate", adjudicate)
    builder.add_node("persist", persist)
    builder.add_edge(START, "parse")
    builder.add_conditional_edges("parse", route_after_parse)
    builder.add_edge("extract", "match")
    builder.add_conditional_edges("match", route_after_match)
    builder.add_edge("decide", "persist")
    builder.add_edge("adjudicate", "persist")
    builder.add_edge("persist", END)
    return builder


builder = build()
graph = builder.compile(name="jdgraph")
