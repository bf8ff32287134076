"""``python -m jdgraph.cli``: the same command line as ``jdgraph``."""

from jdgraph.cli import main

if __name__ == "__main__":
    main()
