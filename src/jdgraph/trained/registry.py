"""The process's loaded span taggers, by name, as :mod:`jdgraph.catalog.registry` holds its open catalogs: a
tagger is loaded once (a second or two) and shared by every run and thread of the process (inference only reads
the weights)."""

from __future__ import annotations

import threading

from jdgraph.trained.compact import SHIPPED, load_compact
from jdgraph.trained.tagger import SpanTagger

SHIPPED_NAME = "shipped"
NONE_NAME = "none"
_loaded: dict[str, SpanTagger] = {}
_lock = threading.Lock()


def get_span_tagger(name: str) -> SpanTagger:
    """``shipped`` (the compact tagger inside the package) or a model id in the cache (``jdgraph models list``).
    A missing or damaged artefact is an ArtefactError naming the command that rebuilds it."""
    with _lock:
        tagger = _loaded.get(name)
        if tagger is None:
            if name == SHIPPED_NAME:
                tagger = load_compact(SHIPPED)
            else:
                # deferred: the cache's full-size loader brings the training module, which shipped users never need
                from jdgraph.trained.train import load_span_tagger

                tagger = load_span_tagger(name)
            _loaded[name] = tagger
        return tagger
