"""Every figure the reports write is legible (issue 15, item 9).

Each figure saved while the reports of a small claims result set are written (the four shipped
experiment kinds, with many optimizers on a narrow cost range and a cliff task) is checked
before it is saved (``Figure.savefig`` is wrapped):

* at most :data:`MAX_WIDTH_PX` pixels wide at the DPI it is saved with;
* no two drawn tick labels of one axis overlap (their window extents, as matplotlib lays them
  out, intersect by more than a pixel);
* a log axis spans at most :data:`MAX_DECADES` decades;
* a legend does not cover the data area of an axes holding an image or a surface (the cliff).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
from helpers import adding_problem
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from suite.report.style import FAMILY_MEMBERS

MAX_WIDTH_PX = 2400
MAX_DECADES = 12.0

SPEED = (
    """
name = "speed"
seeds = 2
budget = {{ fe = 3e3 }}

"""
    + adding_problem(hidden=3)
    + """
[[problems]]
task = "cliff"

{optimizers}
"""
)

OPTIMIZERS = (
    *FAMILY_MEMBERS["gradient"],
    "cmaes",
    "sep-cmaes",
    *FAMILY_MEMBERS["random"],
    *(name for name in FAMILY_MEMBERS["scipy"] if name != "scipy-dual-annealing"),
)


def overlapping_tick_labels(fig: Figure, renderer) -> list[str]:
    """``"axes title: a / b"`` for every pair of drawn tick labels of one axis that overlap."""
    found = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            ticks = axis._update_ticks()  # the ticks matplotlib draws (inside the view)
            labels = [t.label1 for t in ticks if t.label1.get_visible() and t.label1.get_text()]
            boxes = [(lab.get_text(), lab.get_window_extent(renderer)) for lab in labels]
            for i, (a, box_a) in enumerate(boxes):
                for b, box_b in boxes[i + 1 :]:
                    dx = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
                    dy = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
                    if dx > 1 and dy > 1:
                        found.append(f"{ax.get_title()!r} {name}: {a!r} / {b!r}")
    return found


def legend_over_surface(fig: Figure, renderer) -> list[str]:
    """Axes with an image / surface / filled contour whose area a legend covers."""
    found = []
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    for ax in fig.axes:
        if not (
            ax.images
            or ax.collections
            and any(
                type(c).__name__ in ("QuadMesh", "ContourSet", "PolyCollection", "Poly3DCollection")
                for c in ax.collections
            )
        ):
            continue
        area = ax.get_window_extent(renderer)
        for legend in legends:
            box = legend.get_window_extent(renderer)
            dx = min(area.x1, box.x1) - max(area.x0, box.x0)
            dy = min(area.y1, box.y1) - max(area.y0, box.y0)
            if dx > 2 and dy > 2:
                found.append(f"{ax.get_title()!r}: legend over the surface")
    return found


def check_figure(fig: Figure, path: Path, dpi: float) -> list[str]:
    problems = []
    width = fig.get_figwidth() * dpi
    if width > MAX_WIDTH_PX:
        problems.append(f"{width:.0f} px wide")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    problems += [f"tick labels overlap: {o}" for o in overlapping_tick_labels(fig, renderer)]
    for ax in fig.axes:
        for name, scale, lim in (
            ("x", ax.get_xscale(), ax.get_xlim()),
            ("y", ax.get_yscale(), ax.get_ylim()),
        ):
            if scale == "log" and min(lim) > 0:
                decades = np.log10(max(lim) / min(lim))
                if decades > MAX_DECADES:
                    problems.append(f"{ax.get_title()!r} {name}: log axis of {decades:.0f} decades")
    problems += legend_over_surface(fig, renderer)
    return [f"{path.name}: {p}" for p in problems]


@pytest.fixture(scope="module")
def small_claims(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[str]]]:
    """Write the reports of a small claims set, one after the other; return the results root
    and each saved PNG's problems."""
    from test_notebooks import LANDSCAPE, OPTIMA

    from suite.reproduce import (
        claims_dir,
        result_dirs,
        write_claims_report,
        write_experiment_reports,
    )
    from suite.runner import run_experiment

    base = tmp_path_factory.mktemp("figures")
    optimizers = "\n".join(f'[[optimizers]]\nname = "{o}"\n' for o in OPTIMIZERS)
    specs = {
        "speed": SPEED.format(optimizers=optimizers),
        "truncation": SPEED.format(optimizers='[[optimizers]]\nname = "adam"\n').replace(
            "speed", "truncation"
        ),
        "scaling": SPEED.format(optimizers=optimizers).replace("speed", "scaling"),
        "optima": OPTIMA,
        "landscape": LANDSCAPE.replace('measurements = ["slices"]', "")
        + '\n[[problems]]\ntask = "cliff"\n',
    }
    root = base / "results"
    for name, text in specs.items():
        path = base / f"{name}.toml"
        path.write_text(text)
        run_experiment(path, out=root, jobs=1, progress=False)
    found: dict[str, list[str]] = {}
    original = Figure.savefig

    def checked_savefig(self, fname, *args, **kwargs):
        path = Path(fname)
        if path.suffix == ".png":
            dpi = kwargs.get("dpi") or matplotlib.rcParams["savefig.dpi"]
            dpi = self.dpi if dpi == "figure" else float(dpi)
            found[str(path.relative_to(root))] = check_figure(self, path, dpi)
        return original(self, fname, *args, **kwargs)

    Figure.savefig = checked_savefig  # type: ignore[method-assign]
    try:
        dirs = result_dirs(root, quick=False)
        write_experiment_reports(dirs)
        write_claims_report(dirs, claims_dir(root, quick=False))
    finally:
        Figure.savefig = original  # type: ignore[method-assign]
    return root, found


@pytest.fixture(scope="module")
def report_figures(small_claims) -> dict[str, list[str]]:
    return small_claims[1]


@pytest.mark.slow  # two more rounds of reports: the main CI job only
def test_reports_written_in_parallel_are_the_same_files(small_claims, tmp_path):
    """``write_experiment_reports(jobs=2)`` (worker processes) writes byte for byte what the
    serial call wrote: every Markdown report, CSV table and PNG figure of every experiment."""
    import shutil

    from suite.reproduce import result_dirs, write_experiment_reports

    written = ("*.md", "tables/*.csv", "figures/*.png")
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    for root, jobs in ((serial, 1), (parallel, 2)):
        shutil.copytree(small_claims[0], root)
        for name in result_dirs(root, quick=False):
            for pattern in written:
                for path in (root / name).glob(pattern):
                    path.unlink()  # written anew below
        write_experiment_reports(result_dirs(root, quick=False), jobs=jobs)
    compared = 0
    for name in result_dirs(serial, quick=False):
        for pattern in written:
            before = sorted(p.relative_to(serial) for p in (serial / name).glob(pattern))
            after = sorted(p.relative_to(parallel) for p in (parallel / name).glob(pattern))
            assert before == after, (name, pattern)
            for rel in before:
                assert (serial / rel).read_bytes() == (parallel / rel).read_bytes(), rel
                compared += 1
    assert compared >= 20


def test_reports_write_figures(report_figures):
    names = {Path(p).name for p in report_figures}
    assert len(report_figures) >= 10
    assert {"loss_fe.png", "final_train.png"} <= names


def test_every_report_figure_is_legible(report_figures):
    problems = [p for found in report_figures.values() for p in found]
    assert not problems, "\n".join(problems)


def test_optimizer_families_have_distinct_hues():
    """Each family one hue, each member its own shade and marker (issue 15, item 9)."""
    from matplotlib.colors import rgb_to_hsv, to_rgb

    from suite.optimizers import optimizer_info
    from suite.report.style import optimizer_style

    by_family: dict[str, list] = {}
    for name in OPTIMIZERS:
        by_family.setdefault(str(optimizer_info(name)["family"]), []).append(name)
    styles = {n: optimizer_style(n) for n in OPTIMIZERS}
    assert len({(s.color, s.marker) for s in styles.values()}) == len(OPTIMIZERS)
    hues = {}
    for family, members in by_family.items():
        h = [rgb_to_hsv(to_rgb(styles[m].color))[0] for m in members]
        assert max(h) - min(h) < 0.08 or len(members) == 1, family  # one hue per family
        assert len({styles[m].color for m in members}) == len(members)  # a shade each
        assert len({styles[m].marker for m in members}) == len(members)
        hues[family] = float(np.median(h))
    values = sorted(hues.values())
    gaps = np.diff(values + [values[0] + 1.0])
    assert min(gaps) > 0.05, hues  # families differ in hue
