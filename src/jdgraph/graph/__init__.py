"""The LangGraph agent: state, context, nodes, routing and the compiled graph."""
