"""The LangGraph server's entry (``langgraph.json`` names ``graph`` here): the graph whose runs open their catalog.

A server run's context arrives as JSON (``{"catalog": "esco", "persist": false}``), which LangGraph turns into the
graph's context schema. :class:`ServerContext` is :class:`Context` whose catalog is the one the run names: the
process's open catalog of that name, opened by the run's first step (a step runs in a worker thread; opening it as
the context is built, on the server's event loop, is blocking I/O that ``langgraph dev`` refuses). Nodes and tools
read it through ``resolve_catalog`` like any other run's. Python users invoke :data:`jdgraph.graph.graph` with a
catalog in the context, or call :mod:`jdgraph.api`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jdgraph.catalog.queries import Catalog
from jdgraph.catalog.registry import get_catalog
from jdgraph.context import Context
from jdgraph.graph.builder import build
from jdgraph.trained.registry import get_span_tagger


@dataclass(kw_only=True)
class ServerContext(Context):
    """A served run's context: its catalog is the one ``catalog`` names, opened on first use."""

    def resolve_catalog(self) -> Catalog:
        if self.catalog_reader is None:
            self.catalog_reader = get_catalog(self.catalog)
        return super().resolve_catalog()

    def resolve_span_tagger(self) -> Any:
        if self.span_tagger != "none" and self.span_tagger_reader is None:
            self.span_tagger_reader = get_span_tagger(self.span_tagger)
        return super().resolve_span_tagger()


graph = build(ServerContext).compile(name="jdgraph")
