"""The reviewers' and engineers' web page (``jdgraph ui``)."""
