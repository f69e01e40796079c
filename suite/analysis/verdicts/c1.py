"""C1 "BPTT trains RNNs much faster than general-purpose optimizers" (``speed`` experiment).

Per problem and per gradient group, the group's best method against the best black-box method:

* **Groups** (from each record's ``family`` and ``tags`` columns, never from the optimizer
  registry of the reporting process): *first-order BPTT*, tagged ``gradient`` and not of family
  ``scipy`` (sgd, momentum, adam, truncated BPTT, a plugin's gradient method); *quasi-Newton/CG*,
  tagged ``gradient`` and of family ``scipy`` (scipy-bfgs, -lbfgsb, -cg: curvature models on the
  BPTT gradient); *black-box*, without the ``gradient`` tag (CMA-ES family, scipy derivative-free
  and global methods, random search, nevergrad's ``ng-*`` when a ``speed-nevergrad`` folder is
  read in as well).
* **Winner of a group** (:func:`pick_winner`): chosen on the *tuning seeds only*, from the records
  of kind ``tuning`` (the chosen configuration of each entry and its tuning scores: highest
  success rate, then lowest median fe to target, then lowest median final loss). Only when no
  member of a group has a tuning record is the winner chosen on the evaluation seeds (lowest
  ERT in fe), and the row says so.
* **ERT** (COCO): total cost of all runs / number of successes, in fe and in seconds, with the
  Problem's exact hitting cost (:func:`suite.analysis.metrics.time_to_target`).
* **No success is a bound, not infinity** (:func:`ert_bound`): with ``0`` successes in ``n``
  runs the success probability is at most ``p_up``, the two-sided 95% Clopper-Pearson upper
  limit ``Beta(0.975; 1, n)`` (``scipy.stats.beta.ppf``; ``1 - 0.025 ** (1 / n)``, 0.168 for
  ``n = 20``), so ``ERT >= c * (1 - p_up) / p_up`` with ``c`` the mean cost of a failed run (the
  budget in fe). The ratio's interval follows from both sides: black-box without success,
  ``ratio >= ERT_bb_low / ERT_bptt_high`` (``ERT_bptt_high``: the 97.5% bootstrap percentile of
  the BPTT ERT over runs); BPTT without success, ``ratio <= ERT_bb_high / ERT_bptt_low``; the
  reported value is then the bound itself (an interval ``[bound, inf)`` or ``[0, bound]``).
  Neither side succeeding gives ``[0, inf)``: no information on time to target.
* **C1q** (fixed-budget view, its own row, never a fallback inside C1): the ratio of median final
  train losses at the end of the budget, black-box / group, paired bootstrap over seeds.
* **C1+tuning**: the same ratio with each group's tuning cost on the problem (every candidate of
  every entry of the group, on the tuning seeds) added to its ERT.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from suite.analysis.metrics import ert, time_to_target
from suite.analysis.stats import Effect, bootstrap_ci
from suite.analysis.verdicts.common import COLUMNS, CONFIDENCE, N_BOOT, paired_bootstrap, row

C1_MUCH = 3.0
"""C1: "much faster" means a ratio whose 95% lower bound is at least this, in both clocks."""

GROUPS: dict[str, str] = {"first-order": "first-order BPTT", "quasi-newton": "quasi-Newton/CG BPTT"}
"""The two gradient groups judged against the best black-box method (keys used in rows)."""

BOUND_METHOD = (
    "two-sided 95% Clopper-Pearson upper limit p_up of the success probability "
    "(scipy.stats.beta.ppf(0.975, s + 1, n - s) with s = 0), ERT >= mean failed-run cost x "
    "(1 - p_up) / p_up"
)

RULES: dict[str, str] = {
    "C1": (
        f"per task and gradient group (first-order BPTT; quasi-Newton/CG on the BPTT gradient), "
        f"each group's winner and the best black-box method chosen on the tuning seeds. "
        f"supported: the 95% lower bound of ERT(black-box) / ERT(group) is >= {C1_MUCH:g} in both "
        "fe and seconds; refuted: the ratio is <= 1 and its upper bound < "
        f"{C1_MUCH:g} in both clocks (a black-box method matches or beats BPTT); mixed: "
        "otherwise (including when neither side reaches the target: ratio in [0, inf)). A method "
        f"with no success has an ERT bound: {BOUND_METHOD}; the ratio's bound combines it with "
        "the other side's bootstrap bound."
    ),
    "C1q": (
        "fixed-budget view, its own verdict (at equal budget in fe, BPTT reaches lower loss): "
        "ratio of median final train losses black-box / group at the budget; supported: 95% "
        "lower bound > 1; refuted: upper bound < 1; mixed: otherwise."
    ),
    "C1+tuning": (
        "C1's rule with each group's whole tuning cost on the task (fe and seconds of every "
        "configuration of every member on the tuning seeds) added to its ERT."
    ),
}

LIMITS: dict[str, str] = {
    "C1": (
        "small Elman nets in the speed study (H = 8, about 90 parameters; the scaling study "
        "sweeps H = 4..64) and budgets of at most 1e7 fe. A bound from 0 successes in n runs "
        "cannot exceed what n runs can show (ERT >= 4.9 x budget for n = 20, 2.2 x for n = 10): "
        "a ratio reported as a lower bound may be far larger. The ratio's bound combines two "
        "95% limits (coverage about 90% or more). Tuning is equal in configurations and budget "
        "per optimizer, not in the width of the search space."
    ),
}
LIMITS["C1q"] = "judges the loss reached at a fixed fe budget, not the time to a target."
LIMITS["C1+tuning"] = "charges the tuning to a single task; amortised over many uses it vanishes."


# --------------------------------------------------------------------------- groups


def group_of(family: str, tags: str) -> str:
    """``"first-order"``, ``"quasi-newton"`` or ``"black-box"`` from a record's family and its
    comma-joined tags (see the module docstring)."""
    if "gradient" not in str(tags).split(","):
        return "black-box"
    return "quasi-newton" if str(family) == "scipy" else "first-order"


def gradient_names(trials: pd.DataFrame) -> set[str]:
    """Registered names (``optimizer_name``) of the optimizers tagged ``gradient`` in the
    trials frame's ``tags`` column (sorted, comma-joined tags stored with each record), so a
    plugin's gradient method counts as BPTT whether or not the plugin is loaded when reporting."""
    if "tags" not in trials:
        raise ValueError(
            "the trials frame lacks the column 'tags' (optimizer tags, one comma-joined string "
            "per trial, from suite.store.load_results)"
        )
    tagged = trials["tags"].fillna("").astype(str).str.split(",").map(lambda t: "gradient" in t)
    return set(trials.loc[tagged.to_numpy(dtype=bool), "optimizer_name"])


def add_black_box(
    trials: pd.DataFrame, trace: pd.DataFrame, extra: pd.DataFrame, extra_trace: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The frames with the black-box trials of another folder added (e.g. ``speed-nevergrad``):
    its gradient methods are left out, its black-box methods become candidates for C1's best
    black-box method (paired by problem label and seed)."""
    if extra.empty:
        return trials, trace
    black = extra["tags"].fillna("").astype(str).map(lambda t: "gradient" not in t.split(","))
    extra = extra[black.to_numpy(dtype=bool)]
    keys = set(extra["key"])
    return (
        pd.concat([trials, extra], ignore_index=True),
        pd.concat([trace, extra_trace[extra_trace["key"].isin(keys)]], ignore_index=True),
    )


# --------------------------------------------------------------------------- bounds


def success_upper(successes: int, n: int, confidence: float = CONFIDENCE) -> float:
    """Two-sided Clopper-Pearson upper limit of a success probability (``1`` if all succeed):
    ``Beta((1 + confidence) / 2; s + 1, n - s)``; ``1 - 0.025 ** (1 / n)`` when ``s = 0``."""
    if n <= 0:
        return 1.0
    if successes >= n:
        return 1.0
    return float(sps.beta.ppf((1 + confidence) / 2, successes + 1, n - successes))


def ert_bound(cost: np.ndarray, hit: np.ndarray, confidence: float = CONFIDENCE) -> float:
    """Lower bound of the ERT of a method with no success: mean cost of its (failed) runs x
    ``(1 - p_up) / p_up`` (:func:`success_upper`). Example: 20 failures at budget 1e7 fe give
    ``p_up = 0.168`` and ERT >= 4.94e7."""
    cost = np.asarray(cost, dtype=float)
    hit = np.asarray(hit, dtype=bool)
    if hit.any():
        raise ValueError("ert_bound is for methods without success; use metrics.ert")
    p = success_upper(0, cost.size, confidence)
    return float(np.mean(cost) * (1 - p) / p)


def ert_interval(cost: np.ndarray, hit: np.ndarray) -> Effect:
    """ERT with its interval: bootstrap over runs when some run succeeded (``inf`` upper bound
    if resamples without success are frequent), ``[ert_bound, inf)`` otherwise (value = bound)."""
    cost = np.asarray(cost, dtype=float)
    hit = np.asarray(hit, dtype=bool)
    if not hit.any():
        b = ert_bound(cost, hit)
        return Effect(b, b, math.inf)
    data = np.stack([cost, hit.astype(float)], axis=1)
    lo, hi = bootstrap_ci(
        data,
        lambda d: ert(d[..., 0], d[..., 1] > 0),
        n_boot=N_BOOT,
        confidence=CONFIDENCE,
        rng=np.random.default_rng(0),
    )
    return Effect(float(ert(cost, hit)), float(lo), float(hi))


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((a == np.inf) & (b == np.inf), np.nan, a / b)


def ert_ratio(A: dict, B: dict, clock: str, off_a: float = 0.0, off_b: float = 0.0) -> Effect:
    """``(off_b + ERT(B)) / (off_a + ERT(A))`` on ``clock`` with its interval (module docstring).

    ``A``/``B`` hold per-seed arrays ``hit`` and ``clock`` (hitting cost if hit, else the spent
    cost), paired by seed. Both with successes: paired bootstrap over seeds. One side without
    success: the bound from :func:`ert_bound` and the other side's bootstrap interval.
    """
    ha, hb = A["hit"].any(), B["hit"].any()
    if ha and hb:

        def stat(idx: np.ndarray) -> np.ndarray:
            eb = ert(B[clock][idx], B["hit"][idx])
            ea = ert(A[clock][idx], A["hit"][idx])
            return _ratio(off_b + eb, off_a + ea)

        return paired_bootstrap(len(A["hit"]), stat)
    ea, eb = ert_interval(A[clock], A["hit"]), ert_interval(B[clock], B["hit"])
    if ha:  # black-box never succeeded: a lower bound
        low = (off_b + eb.low) / (off_a + ea.high)
        return Effect(low, low, math.inf)
    if hb:  # BPTT never succeeded: an upper bound
        high = (off_b + eb.high) / (off_a + ea.low)
        return Effect(high, 0.0, high)
    return Effect(math.nan, 0.0, math.inf)


def _loss_ratio(A: dict, B: dict) -> Callable[[np.ndarray], np.ndarray]:
    """Statistic: median final loss of B / of A on resampled seed indices."""

    def stat(idx: np.ndarray) -> np.ndarray:
        return _ratio(np.median(B["loss"][idx], axis=-1), np.median(A["loss"][idx], axis=-1))

    return stat


def c1_rule(fe: Effect, sec: Effect) -> str:
    """C1's verdict from the two clocks' ratios (see :data:`RULES`)."""
    effects = [fe, sec]
    if all(math.isnan(e.value) for e in effects):
        return "mixed"
    if all(e.low >= C1_MUCH for e in effects):
        return "supported"
    if all(e.value <= 1 and e.high < C1_MUCH for e in effects):
        return "refuted"
    return "mixed"


def c1q_rule(e: Effect) -> str:
    """C1q's verdict from the final-loss ratio black-box / BPTT."""
    if math.isnan(e.value):
        return "no data"
    if e.low > 1:
        return "supported"
    if e.high < 1:
        return "refuted"
    return "mixed"


# --------------------------------------------------------------------------- winners


def tuning_scores(tuning: Sequence[dict]) -> pd.DataFrame:
    """The chosen candidate of every tuning record: ``problem, entry, success,
    median_fe_to_target, median_final_loss, configs, fe, seconds`` (cost of all candidates)."""
    rows = []
    for r in tuning:
        cands = r.get("candidates") or []
        chosen = next((c for c in cands if c.get("chosen")), None)
        if chosen is None:
            continue
        rows.append(
            {
                "problem": r["problem"],
                "entry": r["entry"],
                "success": float(chosen["success"]),
                "median_fe_to_target": float(chosen["median_fe_to_target"]),
                "median_final_loss": float(chosen["median_final_loss"]),
                "configs": len(cands),
                "fe": float(sum(float(c["fe"]) for c in cands)),
                "seconds": float(sum(float(c["seconds"]) for c in cands)),
            }
        )
    cols = ["problem", "entry", "success", "median_fe_to_target", "median_final_loss"]
    return pd.DataFrame(rows, columns=[*cols, "configs", "fe", "seconds"])


def pick_winner(
    problem: str, members: Sequence[str], scores: pd.DataFrame, fallback: Callable[[str], Any]
) -> tuple[str, bool]:
    """The group's winner on ``problem`` and whether it was chosen on tuning seeds.

    Among ``members`` (evaluation labels) with a tuning record on ``problem``: highest tuning
    success rate, then lowest median fe to target, then lowest median final loss (the evaluation
    records play no part). Without any tuning record: the member minimising ``fallback``.
    """
    s = scores[(scores["problem"] == problem) & scores["entry"].isin(list(members))]
    if s.empty:
        return min(members, key=fallback), False
    s = s.sort_values(
        ["success", "median_fe_to_target", "median_final_loss", "entry"],
        ascending=[False, True, True, True],
        kind="stable",
    )
    return str(s["entry"].iloc[0]), True


def tuning_cost(tuning: Sequence[dict], trials: pd.DataFrame) -> pd.DataFrame:
    """Tuning cost per problem and group: ``problem, group, entries, configs, fe, seconds``."""
    s = tuning_scores(tuning)
    cols = ["problem", "group", "entries", "configs", "fe", "seconds"]
    if s.empty or trials.empty:
        return pd.DataFrame(columns=cols)
    about = trials.drop_duplicates("optimizer").set_index("optimizer")
    s = s[s["entry"].isin(about.index)]
    s = s.assign(group=[group_of(about.at[e, "family"], about.at[e, "tags"]) for e in s["entry"]])
    out = (
        s.groupby(["problem", "group"], sort=False)
        .agg(
            entries=("entry", "size"),
            configs=("configs", "sum"),
            fe=("fe", "sum"),
            seconds=("seconds", "sum"),
        )
        .reset_index()
    )
    return out[cols]


# --------------------------------------------------------------------------- verdict


def _per_optimizer(trials: pd.DataFrame, trace: pd.DataFrame) -> dict[str, dict]:
    hits = time_to_target(trials, trace)
    meta = trials[["key", "optimizer_name", "family", "tags", "final_train_loss"]]
    hits = hits.merge(meta, on="key", how="left")
    out: dict[str, dict] = {}
    for problem, g in hits.groupby("problem", sort=False):
        seeds = np.array(sorted(g["seed"].unique()))
        out[str(problem)] = {"seeds": seeds, "per": paired_runs(g, seeds, loss=True)}
    return out


def paired_runs(g: pd.DataFrame, seeds: np.ndarray, loss: bool = False) -> dict[str, dict]:
    """Each optimizer's runs on one problem, aligned on ``seeds`` for paired comparisons.

    ``g`` holds one problem's :func:`~suite.analysis.metrics.time_to_target` rows merged with
    the trials' ``family`` and ``tags`` (and ``final_train_loss`` when ``loss``). Returns
    optimizer -> {"hit": reached the target, per seed; "fe" / "s": function evaluations /
    seconds to the target, or spent in all when missed (an ERT numerator); "loss": final
    training loss (with ``loss`` only); "group": :func:`group_of` the optimizer}. An optimizer
    missing a seed is left out: it cannot be paired.
    """
    per: dict[str, dict] = {}
    for opt, o in g.groupby("optimizer", sort=False):
        o = o.set_index("seed").reindex(seeds)
        if o["hit"].isna().any():
            continue
        hit = o["hit"].to_numpy(dtype=bool)
        runs = {
            "hit": hit,
            "fe": np.where(hit, o["fe"], o["spent_fe"]).astype(float),
            "s": np.where(hit, o["seconds"], o["spent_seconds"]).astype(float),
        }
        if loss:
            runs["loss"] = o["final_train_loss"].to_numpy(dtype=float)
        runs["group"] = group_of(o["family"].iloc[0], o["tags"].iloc[0])
        per[str(opt)] = runs
    return per


def _fmt_effect(e: Effect) -> str:
    if e.high == math.inf and e.low == e.value:
        return f">= {e.value:.3g}"
    if e.low == 0.0 and e.high == e.value:
        return f"<= {e.value:.3g}"
    return f"{e.value:.3g} [{e.low:.3g}, {e.high:.3g}]"


def verdict_c1(
    trials: pd.DataFrame,
    trace: pd.DataFrame,
    evidence: str = "",
    tuning: Sequence[dict] = (),
) -> pd.DataFrame:
    """C1, C1q and C1+tuning rows per problem and gradient group (see the module docstring).

    ``trials``/``trace``: the frames of a ``speed``-like folder (optionally concatenated with a
    ``speed-nevergrad`` folder's, whose black-box methods then compete for "best black-box");
    ``tuning``: the records of kind ``tuning`` of those folders. A row's problem is
    ``"<problem> · <group>"``.
    """
    if trials.empty:
        return pd.DataFrame(columns=COLUMNS)
    scores = tuning_scores(tuning)
    costs = tuning_cost(tuning, trials).set_index(["problem", "group"])
    rows = []
    for problem, d in _per_optimizer(trials, trace).items():
        per, n = d["per"], len(d["seeds"])

        def by_ert(o: str, per: dict = per) -> tuple:
            return (float(ert(per[o]["fe"], per[o]["hit"])), float(np.median(per[o]["loss"])))

        members = {
            g: [o for o, v in per.items() if v["group"] == g] for g in [*GROUPS, "black-box"]
        }
        if not members["black-box"] or not (members["first-order"] or members["quasi-newton"]):
            detail = "needs a gradient and a black-box method"
            rows.append(row("C1", str(problem), "no data", detail=detail, ev=evidence))
            continue
        b, b_tuned = pick_winner(problem, members["black-box"], scores, by_ert)
        B = per[b]
        for g, gname in GROUPS.items():
            label = f"{problem} · {gname}"
            if not members[g]:
                continue
            a, a_tuned = pick_winner(problem, members[g], scores, by_ert)
            A = per[a]
            chosen = "tuning seeds" if a_tuned and b_tuned else "evaluation seeds (untuned)"
            who = (
                f"{gname}: {a} (success {A['hit'].sum()}/{n}); best black-box: {b} "
                f"(success {B['hit'].sum()}/{n}); winners chosen on {chosen}"
            )
            fe, sec = ert_ratio(A, B, "fe"), ert_ratio(A, B, "s")
            rows.append(
                row(
                    "C1",
                    label,
                    c1_rule(fe, sec),
                    "ERT ratio black-box / BPTT (fe)",
                    fe,
                    "ERT ratio (seconds)",
                    sec,
                    n,
                    f"{who}; ratio in fe {_fmt_effect(fe)}, in seconds {_fmt_effect(sec)}",
                    evidence,
                )
            )
            q = paired_bootstrap(n, _loss_ratio(A, B))
            measure = "final-loss ratio black-box / BPTT"
            rows.append(row("C1q", label, c1q_rule(q), measure, q, n=n, detail=who, ev=evidence))
            if (problem, g) in costs.index and (problem, "black-box") in costs.index:
                ca, cb = costs.loc[(problem, g)], costs.loc[(problem, "black-box")]
                fe_t = ert_ratio(A, B, "fe", float(ca["fe"]), float(cb["fe"]))
                sec_t = ert_ratio(A, B, "s", float(ca["seconds"]), float(cb["seconds"]))
                rows.append(
                    row(
                        "C1+tuning",
                        label,
                        c1_rule(fe_t, sec_t),
                        "(tuning + ERT) ratio black-box / BPTT (fe)",
                        fe_t,
                        "(tuning + ERT) ratio (seconds)",
                        sec_t,
                        n,
                        f"tuning cost {gname} {ca['fe']:.3g} fe / {ca['seconds']:.3g} s, "
                        f"black-box {cb['fe']:.3g} fe / {cb['seconds']:.3g} s; {who}",
                        evidence,
                    )
                )
    return pd.DataFrame(rows, columns=COLUMNS)


def heldout_table(trials: pd.DataFrame, tuning: Sequence[dict] = ()) -> pd.DataFrame:
    """Train against held-out (test) loss of each group's winner, per problem (the winner as in
    :func:`verdict_c1`; without tuning records, the lowest median train loss): ``problem,
    group, optimizer, runs, median_train_loss, median_test_loss, test_over_train,
    target_loss, success_train, success_heldout`` (the share of runs whose final train /
    held-out loss is at or below the task's stated target). Success in C1 is judged on the train
    target; this table shows what the winners' fits are worth on data they never saw
    (overfitting: ``test_over_train >> 1``, ``success_heldout`` far below ``success_train``)."""
    scores = tuning_scores(tuning)
    rows = []
    pairs = zip(trials["family"], trials["tags"], strict=True)
    t = trials.assign(group=[group_of(f, g) for f, g in pairs])
    for problem, g in t.groupby("problem", sort=False):
        med = g.groupby("optimizer")[["final_train_loss", "final_test_loss"]].median()
        for group in [*GROUPS, "black-box"]:
            members = sorted(set(g.loc[g["group"] == group, "optimizer"]))
            if not members:
                continue
            train_loss = med["final_train_loss"].to_dict()
            best, _ = pick_winner(str(problem), members, scores, train_loss.__getitem__)
            tr, te = med.at[best, "final_train_loss"], med.at[best, "final_test_loss"]
            ratio = te / tr if tr > 0 else math.nan
            runs = g[g["optimizer"] == best]
            target = float(runs["target_loss"].iloc[0])
            train_ok = float((runs["final_train_loss"] <= target).mean())
            test_ok = float((runs["final_test_loss"] <= target).mean())
            rows.append([problem, group, best, len(runs), tr, te, ratio, target, train_ok, test_ok])
    cols = ["problem", "group", "optimizer", "runs", "median_train_loss", "median_test_loss"]
    cols += ["test_over_train", "target_loss", "success_train", "success_heldout"]
    return pd.DataFrame(rows, columns=cols)
