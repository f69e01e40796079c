"""One fixed look per optimizer across every figure of every experiment.

The colour and the marker depend only on the optimizer's *base name* (``adam`` for the display
name ``adam(lr=0.03)``), so "adam" has the same colour in every figure and every report. Each
optimizer *family* gets one hue (:data:`FAMILY_HUES`: gradient methods blue, truncated BPTT
teal, CMA-ES orange, scipy green, random search purple; another family a hue from a stable hash
of its name), and each member of a family its own shade of that hue (HLS lightness from dark to
light, :func:`family_color`) and its own marker, in the fixed order of :data:`FAMILY_MEMBERS`
(other members: a slot from a stable MD5 hash of the name, not Python's salted ``hash``, so the
same in every run). Fifteen optimizers thus read as five groups, and within a group by shade and
marker. Configured variants of one optimizer (``adam(lr=0.01)``, ``adam(lr=0.1)``) share its
colour and marker and differ by line style: the plain name is solid, a variant takes a dashed
style chosen by hashing its full display name.

Example::

    >>> optimizer_style("adam(lr=0.03)").color == optimizer_style("adam").color
    True
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from suite.optimizers import optimizer_info, optimizer_names

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

FAMILY_HUES: dict[str, float] = {
    "gradient": 0.59,  # blue
    "truncated": 0.48,  # teal
    "cmaes": 0.07,  # orange
    "scipy": 0.33,  # green
    "random": 0.80,  # purple
}
"""Hue (HSV/HLS, in [0, 1)) of each built-in optimizer family."""

FAMILY_MEMBERS: dict[str, tuple[str, ...]] = {
    "gradient": ("adam", "sgd", "momentum"),
    "truncated": ("tbptt",),
    "cmaes": ("cmaes", "sep-cmaes", "ipop-cmaes", "cmaes-auto"),
    "scipy": (
        "scipy-lbfgsb",
        "scipy-bfgs",
        "scipy-cg",
        "scipy-nelder-mead",
        "scipy-powell",
        "scipy-de",
        "scipy-dual-annealing",
    ),
    "random": ("random-search",),
}
"""The shipped members of each family, in shade order (darkest first)."""

SHADES = 7
"""Shades per family (lightness steps); a family's members cycle through them."""

KNOWN_FAMILY: dict[str, str] = {m: f for f, ms in FAMILY_MEMBERS.items() for m in ms}
"""The family of each shipped optimizer name."""

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


def family_of(base: str) -> str:
    """The family of a base name: the shipped table, else the optimizer registry (a loaded
    plugin), else ``""``."""
    if base in KNOWN_FAMILY:
        return KNOWN_FAMILY[base]
    return str(optimizer_info(base)["family"]) if base in optimizer_names() else ""


def family_color(family: str, shade: int) -> str:
    """The colour of shade ``shade`` of ``family``'s hue: HLS lightness 0.30 (darkest) to 0.66
    in :data:`SHADES` steps, saturation 0.85 (greys for the empty family)."""
    if family in FAMILY_HUES:
        hue = FAMILY_HUES[family]
    else:  # a plugin family: a stable hue away from the built-in ones where possible
        hue = (_stable_hash(family) % 360) / 360.0
    lightness = 0.30 + 0.36 * (shade % SHADES) / (SHADES - 1)
    saturation = 0.0 if not family else 0.85
    r, g, b = colorsys.hls_to_rgb(hue, lightness, saturation)
    return "#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in (r, g, b)))


def _slot(base: str, family: str) -> int:
    members = FAMILY_MEMBERS.get(family, ())
    if base in members:
        return members.index(base)
    return _stable_hash(base) % SHADES


def optimizer_style(name: str) -> OptimizerStyle:
    """The fixed colour, marker and line style of the optimizer with display name ``name``:
    its family's hue, its own shade and marker (see the module docstring)."""
    base = base_name(name)
    family = family_of(base)
    slot = _slot(base, family)
    color = family_color(family, slot)
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
