"""One fixed look per optimizer across every figure of every experiment.

The colour and the marker depend only on the optimizer's *base name* (``adam`` for the display
name ``adam(lr=0.03)``), so "adam" has the same colour in every figure and every report. Names
the suite ships get hand-picked slots of a colour-blind-safe palette (Okabe & Ito, 2008, extended
with the darker Tableau colours); any other name (a plugin) gets a slot from a stable hash of the
name (MD5, not Python's salted ``hash``), so it too is the same in every run. Configured variants
of one optimizer (``adam(lr=0.01)``, ``adam(lr=0.1)``) share its colour and marker and differ by
line style: the plain name is solid, a variant takes a dashed style chosen by hashing its full
display name.

Example::

    >>> optimizer_style("adam(lr=0.03)").color == optimizer_style("adam").color
    True
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#8C564B",  # brown
    "#7F7F7F",  # grey
    "#BCBD22",  # olive
    "#9467BD",  # purple
    "#17BECF",  # cyan
    "#1F3A93",  # navy
    "#B8860B",  # dark goldenrod
    "#2E8B57",  # sea green
    "#C71585",  # medium violet red
)
"""Fixed colour palette; index ``i`` is the colour of slot ``i``."""

MODEL_COLORS: dict[str, str] = {"elman": PALETTE[0], "tdnn": PALETTE[1], "cliff": PALETTE[2]}
"""One colour per model (the RNN and its feed-forward twin)."""

MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
"""Fixed marker list; markers cycle with a different period than colours."""

VARIANT_LINESTYLES: tuple[Any, ...] = ("--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))
"""Line styles for configured variants (the plain name is always solid)."""

KNOWN_SLOTS: dict[str, int] = {
    "adam": 0,
    "cmaes": 1,
    "sgd": 2,
    "random-search": 3,
    "scipy-lbfgsb": 4,
    "momentum": 5,
    "tbptt": 6,
    "scipy-bfgs": 7,
    "scipy-nelder-mead": 8,
    "scipy-cg": 9,
    "scipy-powell": 10,
    "scipy-de": 11,
    "scipy-dual-annealing": 12,
    "ipop-cmaes": 13,
    "sep-cmaes": 15,
    "cmaes-auto": 14,
}
"""Hand-picked slots for the names the suite ships; every other name is hashed."""

CLOCK_LABELS: dict[str, str] = {
    "fe": "forward-equivalents (fe)",
    "seconds": "wall time (s)",
}
"""Axis labels, with units, for the two cost clocks."""


@dataclass(frozen=True)
class OptimizerStyle:
    """Matplotlib line/marker properties of one optimizer."""

    color: str
    marker: str
    linestyle: Any

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``Axes.plot``."""
        return {"color": self.color, "marker": self.marker, "linestyle": self.linestyle}


def base_name(name: str) -> str:
    """The registered name of a display name: ``"adam(lr=0.03)" -> "adam"``."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"optimizer name must be a non-empty string, got {name!r}")
    return name.split("(", 1)[0].strip()


def _stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.md5(text.encode("utf-8")).digest()[:8], "big")


def _slot(base: str) -> int:
    if base in KNOWN_SLOTS:
        return KNOWN_SLOTS[base]
    return _stable_hash(base) % len(PALETTE)


def optimizer_style(name: str) -> OptimizerStyle:
    """The fixed colour, marker and line style of the optimizer with display name ``name``."""
    base = base_name(name)
    slot = _slot(base)
    color = PALETTE[slot % len(PALETTE)]
    marker = MARKERS[slot % len(MARKERS)]
    if name.strip() == base:
        linestyle: Any = "-"
    else:
        linestyle = VARIANT_LINESTYLES[_stable_hash(name.strip()) % len(VARIANT_LINESTYLES)]
    return OptimizerStyle(color=color, marker=marker, linestyle=linestyle)


def clock_label(clock: str) -> str:
    """Axis label with unit for a cost clock (``"fe"`` or ``"seconds"``)."""
    if clock not in CLOCK_LABELS:
        raise ValueError(f"clock must be one of {sorted(CLOCK_LABELS)}, got {clock!r}")
    return CLOCK_LABELS[clock]


RC_PARAMS: dict[str, Any] = {
    "figure.dpi": 110,
    "savefig.dpi": 130,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.5,
    "lines.markersize": 5,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
"""Matplotlib settings used by every figure of the suite (``matplotlib.rc_context(RC_PARAMS)``)."""

F = TypeVar("F", bound=Callable[..., Any])


def styled(func: F) -> F:
    """Decorator: run a figure-drawing function inside ``matplotlib.rc_context(RC_PARAMS)``.

    The suite's settings apply while the figure is drawn and are restored afterwards.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import matplotlib  # here: the colour and label helpers above do not need it

        with matplotlib.rc_context(RC_PARAMS):  # type: ignore[arg-type]  # keys typed as a Literal
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
