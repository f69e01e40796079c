"""Analysis of stored results: performance metrics (:mod:`suite.analysis.metrics`) and the
studies of optima and landscapes. Submodules are imported explicitly, e.g.
``from suite.analysis import metrics``; nothing is imported eagerly here."""
