"""Tests of suite.report: style, tables, plots, REPORT.md, and the analysis notebook."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from test_metrics import coco_runs, make_frames, paired_runs

from suite.analysis import metrics, profiles
from suite.report import plots, style, tables

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "compare_optimizers.ipynb"

# ----------------------------------------------------------------------- style


def test_style_is_fixed_per_base_name() -> None:
    a = style.optimizer_style("adam")
    assert a == style.optimizer_style("adam")
    variant = style.optimizer_style("adam(lr=0.03)")
    assert variant.color == a.color and variant.marker == a.marker
    assert a.linestyle == "-" and variant.linestyle != "-"
    assert style.optimizer_style("cmaes").color != a.color


def test_shipped_names_get_distinct_colours() -> None:
    names = list(style.KNOWN_FAMILY)
    colours = [style.optimizer_style(n).color for n in names]
    assert len(set(colours)) == len(names)
    # the family table agrees with the registry
    suite = pytest.importorskip("suite")
    assert all(suite.optimizer_info(n)["family"] == style.KNOWN_FAMILY[n] for n in names)


def test_built_in_optimizers_get_distinct_colours() -> None:
    suite = pytest.importorskip("suite")
    names = [
        n
        for n in suite.optimizer_names()
        if suite.optimizer_info(n)["class"].startswith("suite.optimizers.")
        and suite.optimizer_info(n)["family"] != "nevergrad"  # optional: hashed like plugins
    ]
    assert len(names) >= 2
    colours = {n: style.optimizer_style(n).color for n in names}
    assert len(set(colours.values())) == len(names), colours


def test_unknown_names_hash_stably() -> None:
    name = "my-plugin-optimizer"
    digest = int.from_bytes(hashlib.md5(name.encode()).digest()[:8], "big")
    expected = style.family_color("", digest % style.SHADES)
    assert style.optimizer_style(name).color == expected  # an unknown family: a grey shade
    assert style.base_name(" my-plugin-optimizer(a=1, b=2)") == name
    with pytest.raises(ValueError, match="non-empty string"):
        style.base_name("")
    with pytest.raises(ValueError, match="clock must be one of"):
        style.clock_label("minutes")


# ----------------------------------------------------------------------- tables


def test_format_number() -> None:
    f = tables.format_number
    assert f(5012.0) == "5010" and f(0.0501234) == "0.0501" and f(1.2e6) == "1.2e+6"
    assert f(np.inf) == "∞" and f(-np.inf) == "-∞" and f(np.inf, "latex") == r"$\infty$"
    assert f(np.nan) == "-" and f(None) == "-" and f(7) == "7" and f(np.int64(3)) == "3"
    assert f(0.0) == "0" and f(True) == "yes"
    with pytest.raises(ValueError, match="style"):
        f(1.0, "html")


def test_format_table_merges_intervals_and_renames() -> None:
    df = pd.DataFrame({"optimizer": ["a"], "ert_fe": [30.0], "ert_fe_low": [20.0]})
    df["ert_fe_high"] = np.inf
    out = tables.format_table(df)
    assert list(out.columns) == ["optimizer", "ERT (fe) [95% CI]"]
    assert out.iloc[0, 1] == "30 [20, ∞]"


def test_markdown_and_latex_writers(tmp_path: Path) -> None:
    df = pd.DataFrame({"problem": ["a|b"], "optimizer": ["x_1 & y"], "ratio": [np.inf]})
    md = tables.to_markdown(tables.format_table(df))
    lines = md.strip().splitlines()
    assert lines[0] == "| problem | optimizer | ratio |"
    assert lines[1] == "|---|---|---|" and r"a\|b" in lines[2] and "∞" in lines[2]
    tex = tables.to_latex(tables.format_table(df, "latex"), caption="C_1")
    assert r"x\_1 \& y" in tex and r"$\infty$" in tex and r"\caption{C\_1}" in tex
    assert tex.count(r"\\") == 2  # header and one row
    paths = tables.write_table(df, tmp_path / "t", "demo", latex=True)
    assert set(paths) == {"csv", "md", "tex"}
    assert pd.read_csv(paths["csv"])["ratio"].iloc[0] == np.inf  # CSV keeps the raw number
    with pytest.raises(ValueError, match="plain file stem"):
        tables.write_table(df, tmp_path, "a/b")


def test_resolve_reference() -> None:
    names = ["cmaes", "adam(lr=0.03)", "adam"]
    assert tables.resolve_reference(names, "adam") == "adam"
    assert tables.resolve_reference(names[:2], "adam") == "adam(lr=0.03)"
    assert tables.resolve_reference(names[:1], "adam") == "cmaes"
    with pytest.raises(ValueError, match="no optimizers"):
        tables.resolve_reference([], "adam")


def test_summary_table_known_answers() -> None:
    runs = coco_runs() + [
        {"problem": "P", "optimizer": "b", "seed": s, "fe": [1, 5], "loss": [1.0, 0.01]}
        for s in range(3)
    ]
    runs += [
        {"problem": "P", "optimizer": "c", "seed": s, "fe": [], "loss": [], "final": np.inf}
        for s in range(2)
    ]
    trials, trace = make_frames(runs)
    s = tables.summary_table(trials, trace, n_boot=50).set_index("optimizer")
    assert s.loc["c", "final_train"] == np.inf and s.loc["c", "final_train_high"] == np.inf
    assert s.loc["c", "final_train_low"] == np.inf and s.loc["c", "success_rate"] == 0.0
    assert s.loc["a", "runs"] == 3 and s.loc["a", "success_rate"] == pytest.approx(2 / 3)
    assert s.loc["a", "ert_fe"] == pytest.approx(30.0)
    assert s.loc["a", "median_fe_to_target"] == 20.0  # 10, 20, inf
    assert s.loc["a", "final_train"] == pytest.approx(0.08)
    assert s.loc["b", "ert_fe"] == 5.0 and s.loc["b", "success_rate"] == 1.0
    assert s.loc["b", "statuses"] == "budget 100%"


def test_fixed_budget_table_medians_at_fractions_of_the_budget() -> None:
    trials, trace = make_frames(coco_runs())  # no budget set: B = largest fe spent = 100
    fb = tables.fixed_budget_table(trials, trace, fractions=(0.001, 0.1, 1.0)).iloc[0]
    assert fb["budget_fe"] == 100.0 and np.isnan(fb["at_0.001"])  # nothing reported by 0.1 fe
    assert fb["at_0.1"] == pytest.approx(0.5) and fb["at_1"] == pytest.approx(0.08)
    with pytest.raises(ValueError, match="fractions"):
        tables.fixed_budget_table(trials, trace, fractions=(0.0,))


def test_speed_and_quality_tables() -> None:
    trials, trace = make_frames(paired_runs(2.0))
    hits = metrics.time_to_target(trials, trace)
    sp = tables.speed_table(trials, hits, "ref", n_boot=100)
    assert len(sp) == 1 and sp.loc[0, "ratio_fe"] == pytest.approx(2.0)
    assert sp.loc[0, "better_worse"] == "0 / 6" and sp.loc[0, "effect_fe"] == -1.0
    assert sp.loc[0, "p_holm_fe"] == pytest.approx(2 / 2**6)
    q = tables.quality_table(trials, "ref", n_boot=100)
    assert q.loc[0, "ratio"] == pytest.approx(1.0)  # same final losses
    assert q.loc[0, "p_holm"] == 1.0


def test_failure_table_names_the_cause() -> None:
    tb = 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: lr must be > 0\n'
    runs = [
        {"problem": "P", "optimizer": "a", "seed": s, "fe": [1], "loss": [1.0], "status": st}
        for s, st in enumerate(["error", "error", "ok", "diverged"])
    ]
    runs[0]["error"] = runs[1]["error"] = tb
    runs[3]["error"] = "theta has non-finite entries\nmore"
    trials, _ = make_frames(runs)
    f = tables.failure_table(trials)
    assert list(f["runs"]) == [2, 1]
    assert f.loc[0, "cause"] == "ValueError: lr must be > 0" and f.loc[0, "seeds"] == "0, 1"
    assert f.loc[1, "cause"] == "theta has non-finite entries"
    assert tables.failure_table(trials[trials["status"] == "ok"]).empty


# ----------------------------------------------------------------------- plots


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = []
    for problem in ("P1", "P2 with a rather long problem label / elman(hidden=8)"):
        runs += [dict(r, problem=problem) for r in paired_runs(2.0)]
    return make_frames(runs)


def test_every_plot_draws_and_saves(frames, tmp_path: Path) -> None:
    trials, trace = frames
    hits = metrics.time_to_target(trials, trace)
    ladder = metrics.time_to_target(trials, trace, metrics.target_ladder(trials, 5))
    ecdf = profiles.runtime_ecdf(ladder, grid=profiles.cost_grid(trace))
    ert = metrics.ert_table(hits, n_boot=10)
    paired = metrics.paired_comparison(trials, "ref", hits=hits, n_boot=50)
    figs = {
        "loss": plots.plot_loss_curves(profiles.loss_curves(trace), targets={"P1": 0.1}),
        "ecdf": plots.plot_runtime_ecdf(ecdf, aggregated=profiles.aggregate_ecdf(ecdf)),
        "final": plots.plot_final_losses(profiles.final_losses(trials), "test"),
        "profile": plots.plot_performance_profile(profiles.performance_profile(ert)),
        "speed": plots.plot_speed_ratios(paired),
    }
    for name, fig in figs.items():
        assert isinstance(fig, Figure)
        paths = plots.save_figure(fig, tmp_path, name, pdf=name == "speed")
        assert all(p.stat().st_size > 1000 for p in paths)
    assert (tmp_path / "speed.pdf").exists() and not (tmp_path / "loss.pdf").exists()
    # one panel per problem, plus the aggregate ECDF panel
    assert len([ax for ax in figs["loss"].axes if ax.get_visible()]) == 2
    assert len([ax for ax in figs["ecdf"].axes if ax.get_visible()]) == 3
    ax = figs["loss"].axes[0]
    assert ax.get_xscale() == "log" and "(fe)" in ax.get_xlabel()
    line_colours = {ln.get_color() for ln in ax.get_lines() if ln.get_label() == "x"}
    assert line_colours == {style.optimizer_style("x").color}


def test_plots_reject_frames_without_their_columns() -> None:
    with pytest.raises(ValueError, match="lacks columns"):
        plots.plot_loss_curves(pd.DataFrame({"problem": []}))
    with pytest.raises(ValueError, match="split 'valid'"):
        plots.plot_final_losses(
            pd.DataFrame(columns=["problem", "optimizer", "split", "loss"]), "valid"
        )


# ----------------------------------------------------------------------- whole report


TINY_TOML = """
name = "tiny"
seeds = 3
budget = { fe = 2e4 }

[[problems]]
task = "adding"
seq_len = 5
hidden = 3

[[optimizers]]
name = "adam"

[[optimizers]]
name = "random-search"
batch = 4
"""


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runner = pytest.importorskip("suite.runner")
    base = tmp_path_factory.mktemp("tiny")
    spec = base / "tiny.toml"
    spec.write_text(textwrap.dedent(TINY_TOML))
    summary = runner.run_experiment(spec, out=base / "results", jobs=1, progress=False)
    return Path(summary.directory)


def test_write_report_writes_every_file(tiny_results: Path) -> None:
    from suite.report import write_report
    from suite.store import load_results

    report = write_report(tiny_results, latex=True, pdf=True)
    assert report == tiny_results / "REPORT.md"
    text = report.read_text()
    for name in ("summary", "fixed_budget", "speed", "quality", "failures"):
        for ext in ("csv", "md", "tex"):
            path = tiny_results / "tables" / f"{name}.{ext}"
            assert path.stat().st_size > 0, path
    figures = ["loss_fe", "loss_seconds", "ecdf_fe", "ecdf_seconds", "final_train", "final_test"]
    for name in [*figures, "profile_ert_fe"]:
        for ext in ("png", "pdf"):
            assert (tiny_results / "figures" / f"{name}.{ext}").stat().st_size > 1000
        assert f"](figures/{name}.png)" in text
    for link in [ln.split("](")[1].rstrip(")") for ln in text.splitlines() if ln.startswith("![")]:
        assert (tiny_results / link).is_file()
    assert "## What was run" in text and "## Findings" in text and "numpy" in text
    assert "`random-search(batch=4)`" in text and "20000 fe" in text

    # the report's time to target agrees with the store's own column
    res = load_results(tiny_results)
    hits = metrics.time_to_target(res.trials, res.trace).set_index("key")
    stored = res.trials.set_index("key")["fe_to_target"]
    pd.testing.assert_series_equal(
        hits.loc[stored.index, "fe"], stored, check_names=False, check_dtype=False
    )


def test_write_report_rejects_an_empty_folder(tmp_path: Path) -> None:
    from suite.report import write_report

    with pytest.raises(ValueError, match="no results folder|no trial records"):
        write_report(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no trial records"):
        write_report(tmp_path / "empty")


def test_notebook_runs_on_a_results_folder(tiny_results: Path, execute_notebook) -> None:
    nb = execute_notebook(NOTEBOOK, {"RNNBENCH_RESULTS": str(tiny_results)})
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    kinds = {k for o in outputs for k in o.get("data", {})}
    assert "image/png" in kinds and "text/markdown" in kinds
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert str(tiny_results) in text
