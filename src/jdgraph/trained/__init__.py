"""Trained components: training data loaders, an encoder tuned on titles and the ESCO taxonomy, a skill-span
tagger, their artefacts (one folder per model id in the jdgraph cache, each with a model card) and their dev
measurements.

This package imports only jdgraph.settings, jdgraph.errors and third-party libraries, so the pipeline can wire it in
without an import cycle. Train with ``jdgraph models train span-tagger|encoder``; the tagger the package ships is
``shipped/`` (:mod:`jdgraph.trained.compact`), loaded once per process by :mod:`jdgraph.trained.registry`.
"""
