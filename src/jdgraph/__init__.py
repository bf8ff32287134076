"""jdgraph: resolve job descriptions against a skills-and-roles catalog with a LangGraph agent.

``jdgraph.classify(text, **context)`` classifies one JD, ``jdgraph.classify_many(items, concurrency=N)`` a batch;
``from jdgraph.graph import graph`` is the compiled LangGraph graph (``jdgraph.graph`` is the subpackage that holds
it, so ``from jdgraph import graph`` gives the subpackage).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["BatchItem", "BatchOutcome", "ClassificationResult", "Context", "classify", "classify_many", "resume"]


def __getattr__(name: str) -> Any:
    # Lazy: importing jdgraph for its CLI or catalog must not build the graph (and import LangGraph) first.
    if name in ("classify", "classify_many", "resume", "BatchItem", "BatchOutcome"):
        from jdgraph import api

        return getattr(api, name)
    if name == "ClassificationResult":
        from jdgraph.graph.schemas import ClassificationResult

        return ClassificationResult
    if name == "Context":
        from jdgraph.context import Context

        return Context
    raise AttributeError(name)
