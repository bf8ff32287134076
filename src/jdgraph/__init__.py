"""jdgraph: resolve job descriptions against a skills-and-roles catalog with a LangGraph agent.

``from jdgraph import graph`` gives the compiled graph; ``jdgraph.classify(text, **context)`` runs it.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["ClassificationResult", "Context", "classify", "graph", "resume"]


def __getattr__(name: str) -> Any:
    # Lazy: importing jdgraph for its CLI or catalog must not build the graph (and import LangGraph) first.
    if name == "graph":
        from jdgraph.graph.builder import graph

        return graph
    if name in ("classify", "resume"):
        from jdgraph import api

        return getattr(api, name)
    if name == "ClassificationResult":
        from jdgraph.graph.schemas import ClassificationResult

        return ClassificationResult
    if name == "Context":
        from jdgraph.graph.context import Context

        return Context
    raise AttributeError(name)
