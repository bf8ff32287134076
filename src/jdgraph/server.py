"""The LangGraph server's entry (``langgraph.json`` names ``graph`` here): the graph whose runs open their catalog.

A server run's context arrives as JSON (``{"catalog": "esco", "persist": false}``), which LangGraph turns into the
graph's context schema. :class:`ServerContext` is :class:`Context` plus one step: it opens the catalog the run
names (the process's open catalog of that name, opened on its first run), so nodes and tools read it from the
runtime like any other run's. Python users invoke :data:`jdgraph.graph.graph` with a catalog in the context, or
call :mod:`jdgraph.api`.
"""

from __future__ import annotations

from dataclasses import dataclass

from jdgraph.catalog.registry import get_catalog
from jdgraph.context import Context
from jdgraph.graph.builder import build


@dataclass(kw_only=True)
class ServerContext(Context):
    """A served run's context: its catalog, named by ``catalog``, opened as the run starts."""

    def __post_init__(self) -> None:
        if self.catalog_reader is None:
            self.catalog_reader = get_catalog(self.catalog)


graph = build(ServerContext).compile(name="jdgraph")
