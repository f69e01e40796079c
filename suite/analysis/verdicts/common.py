"""What every verdict shares: the bootstrap settings, the row layout and its columns."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from suite.analysis import stats
from suite.analysis.stats import Effect

N_BOOT = 2000
CONFIDENCE = 0.95
COLUMNS = [
    "claim",
    "problem",
    "verdict",
    "measure",
    "effect",
    "ci_low",
    "ci_high",
    "measure_2",
    "effect_2",
    "ci_low_2",
    "ci_high_2",
    "n",
    "detail",
    "evidence",
]


def paired_bootstrap(n: int, stat: Callable[[np.ndarray], np.ndarray]) -> Effect:
    """:func:`suite.analysis.stats.paired_bootstrap` with this module's ``N_BOOT``,
    ``CONFIDENCE`` and a fresh ``default_rng(0)`` (each verdict reproducible on its own)."""
    return stats.paired_bootstrap(
        n, stat, n_boot=N_BOOT, confidence=CONFIDENCE, rng=np.random.default_rng(0)
    )


def row(
    claim: str,
    problem: str,
    verdict: str,
    measure: str = "",
    e1: Effect | None = None,
    measure_2: str = "",
    e2: Effect | None = None,
    n: int = 0,
    detail: str = "",
    ev: str = "",
) -> dict:
    nan = Effect(math.nan, math.nan, math.nan)
    e1, e2 = e1 or nan, e2 or nan
    return dict(
        claim=claim,
        problem=problem,
        verdict=verdict,
        measure=measure,
        effect=e1.value,
        ci_low=e1.low,
        ci_high=e1.high,
        measure_2=measure_2,
        effect_2=e2.value,
        ci_low_2=e2.low,
        ci_high_2=e2.high,
        n=n,
        detail=detail,
        evidence=ev,
    )
