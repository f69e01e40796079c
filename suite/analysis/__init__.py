"""Analysis of stored results: statistics (:mod:`~suite.analysis.stats`: bootstrap, Holm, paired
tests), fixed-target metrics (:mod:`~suite.analysis.metrics`), anytime views and profiles
(:mod:`~suite.analysis.profiles`), local optima (:mod:`~suite.analysis.optima`,
:mod:`~suite.analysis.symmetry`, :mod:`~suite.analysis.twins`), landscape records
(:mod:`~suite.analysis.landscape`) and the verdicts (:mod:`~suite.analysis.verdicts`).
Submodules are imported explicitly, e.g. ``from suite.analysis import metrics``; nothing is
imported eagerly here."""
