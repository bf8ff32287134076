"""jdgraph.evals."""
