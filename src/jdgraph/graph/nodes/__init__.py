"""The graph's nodes, one module each: parse → extract → match → (decide | adjudicate) → persist.

Each reads the state and ``Runtime[Context]`` and returns only the fields it owns (:mod:`.common` holds what they
share). The builder takes the nodes from this package, so a test (or a fault script) that swaps one here before
the graph is built runs the graph with it.
"""

from jdgraph.graph.nodes.adjudicate import adjudicate
from jdgraph.graph.nodes.decide import decide
from jdgraph.graph.nodes.extract import extract
from jdgraph.graph.nodes.match import match
from jdgraph.graph.nodes.parse import parse
from jdgraph.graph.nodes.persist import persist

__all__ = ["adjudicate", "decide", "extract", "match", "parse", "persist"]
