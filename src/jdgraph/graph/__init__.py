"""The LangGraph agent: state, context, nodes, routing and the compiled graph.

``from jdgraph.graph import graph`` is the compiled graph (``langgraph.json`` serves the same object).
"""

from __future__ import annotations

from typing import Any

__all__ = ["graph"]


def __getattr__(name: str) -> Any:
    # Lazy: importing a node module must not compile the graph first.
    if name == "graph":
        from jdgraph.graph.builder import graph

        return graph
    raise AttributeError(name)
