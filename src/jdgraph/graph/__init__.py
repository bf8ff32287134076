"""jdgraph.graph."""
