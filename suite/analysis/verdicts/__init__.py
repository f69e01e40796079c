"""Verdicts on the four statements of SCIENCE.md, computed from stored results by stated rules.

Every verdict is per task (one task never speaks for all), carries an effect size with a 95%
bootstrap confidence interval, and is one of ``supported``, ``refuted``, ``mixed`` or
``no data``. The rules are constants in this module and are printed in the claims report; no
verdict is typed by hand. Bootstraps resample seeds (or starts) with replacement from a fixed
``numpy.random.default_rng(0)`` so a report is reproducible.

C1 "BPTT trains RNNs much faster than general-purpose optimizers" (``speed`` experiment):
    per problem, the best BPTT-based optimizer (its record tagged ``gradient``) and the best
    black-box optimizer (no ``gradient`` tag) by ERT in fe (COCO: cost summed over all runs /
    successful runs). Effect: ERT(black-box) / ERT(BPTT) in fe and in seconds, paired bootstrap
    over seeds. When neither family reaches the target, the effect is the ratio of median final
    train losses at the end of the budget (the fixed-budget view).
C2 "BPTT has trouble with local optima" (``optima`` experiment, RNN studies):
    effect: the trap rate over ALL starts (resolved end points from which no perturbation
    reaches a lower level, stalled above the margin), with its bootstrap interval, class shares
    and the sensitivity to the margin; the same per gated architecture (GRU, LSTM).
C3 "local optima matter more for RNNs than for feed-forward nets" (``optima``, size x window
    design): trap rate against a common reference, RNN minus TDNN, over the pairs where both
    models reach the success target, with its interval.
C4 "recurrent feedback makes the error surface chaotic, so local optima are frequent and badly
placed" (``landscape`` experiment), split in two verdicts (``c4``): C4a "chaotic" (share of
    networks with a positive largest Lyapunov exponent, calibrated on Sompolinsky's transition)
    and C4b "rough, with frequent and badly placed optima" (trends of prominent minima along
    fixed-radius lines and of stall gaps with T and radius, per stratum, bootstrap intervals).

Layout: ``common`` (bootstrap settings, the row and its columns), one module per claim
(``c1``, ``c2`` for C2 and C3, ``c4``), each with its rule constants, ``RULES`` and ``LIMITS``.
"""

from __future__ import annotations

from suite.analysis.verdicts import c1, c2, c4
from suite.analysis.verdicts.c1 import gradient_names, verdict_c1
from suite.analysis.verdicts.c2 import c3_pairs, gating_table, verdict_c2, verdict_c3
from suite.analysis.verdicts.c4 import verdict_c4a, verdict_c4b
from suite.analysis.verdicts.common import COLUMNS, CONFIDENCE, N_BOOT, paired_bootstrap, row

RULES: dict[str, str] = {**c1.RULES, **c2.RULES, **c4.RULES}
"""The rule of every claim, as printed in the claims report."""

LIMITS: dict[str, str] = {**c1.LIMITS, **c2.LIMITS, **c4.LIMITS}
"""What each claim's measurement can and cannot tell."""

__all__ = [
    "COLUMNS",
    "CONFIDENCE",
    "LIMITS",
    "N_BOOT",
    "RULES",
    "c3_pairs",
    "gating_table",
    "gradient_names",
    "paired_bootstrap",
    "row",
    "verdict_c1",
    "verdict_c2",
    "verdict_c3",
    "verdict_c4a",
    "verdict_c4b",
]
