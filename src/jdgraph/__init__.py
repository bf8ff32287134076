"""jdgraph: resolve job descriptions against a skills-and-roles catalog with a LangGraph agent."""

__version__ = "0.1.0"
