"""All of matching, found by name: a JD's skill names to catalog skills (:mod:`.skills`), the JD to catalog roles
(:mod:`.roles`, the one home of role scoring, used by the match node and the tools alike), whether the choice is
contested (:mod:`.collision`) and how the rules settle a contest (:mod:`.adjudication`). The SQL behind them stays
in :mod:`jdgraph.catalog.queries`."""
