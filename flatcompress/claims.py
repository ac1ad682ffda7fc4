"""The paper's claims (paper digest §6) and our verdict on each, computed from result records, never typed.

`scorecard(results_root)` returns one row per claim: what the paper says, what we measured, at which
tier, and a verdict from this fixed vocabulary:

- `reproduced`: our runs agree with the claim at the tier named;
- `not reproduced at this scale`: our runs at a smaller scale disagree or are too noisy to decide;
- `contradicted`: our runs disagree clearly;
- `not run yet`: the chapter that tests the claim has no records yet;
- `not testable offline`: needs data or a service we cannot reach (GLUE test server).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from flatcompress.chapter import benchmark_record
from flatcompress.profiles import get_profile
from flatcompress.records import iter_records
from flatcompress.report import OPTIMIZER_ROW, paper_mean

__all__ = ["Claim", "CLAIMS", "Verdict", "scorecard", "flatness_verdict", "kept_sparsity", "one_shot_verdict",
           "imp_curves", "pruning_verdict", "pruned_beats_full_verdict", "average_curve_verdict", "masked_runs",
           "mask_verdict", "transfer_verdict", "l1_verdict", "quantization_scores", "quantization_verdict",
           "ptq_vs_qat_verdict", "cofi_verdict", "VERDICTS"]

VERDICTS = ("reproduced", "not reproduced at this scale", "contradicted", "not run yet", "not testable offline")
TIERS = ("paper", "colab", "cpu")  # the largest tier with records speaks for a claim (smoke models are random)


@dataclass(frozen=True)
class Verdict:
    status: str
    ours: str
    tier: str | None = None


@dataclass(frozen=True)
class Claim:
    id: int
    title: str
    source: str
    paper: str
    chapter: str
    judge: Callable[[Path], Verdict] | None = None  # None: no chapter measures it yet


def _sharpness_by_run(results_dir: Path, dim: int | None) -> dict[tuple[str, str], dict[str, list[float]]]:
    """{(task, optimizer): {eps: [phi per seed]}} from the sharpness records of one tier and subspace size."""
    out: dict[tuple[str, str], dict[str, list[float]]] = {}
    if not results_dir.is_dir():
        return out
    for record in iter_records(results_dir, "sharpness"):
        if record["settings"]["dim"] != dim:
            continue
        config = record["config"]
        per_eps = out.setdefault((config["task"], config["optimizer"]), {})
        for eps, phi in record["sharpness"].items():
            per_eps.setdefault(eps, []).append(phi)
    return out


def flatness_verdict(results_dir: Path, epsilon: str = "0.005", dim: int | None = 100) -> Verdict | None:
    """Claim 1: is SAM's mean φ(ε) below Adam's on every task measured with both? None without records.

    `dim` picks the measurement: the random subspace of that size (the paper's), or None for the full space.
    """
    runs = _sharpness_by_run(Path(results_dir), dim)
    tasks = sorted({t for t, o in runs if o == "adamw"} & {t for t, o in runs if o == "sam"})
    cells = [(t, runs[(t, "sam")].get(epsilon), runs[(t, "adamw")].get(epsilon)) for t in tasks]
    cells = [(t, sum(s) / len(s), sum(a) / len(a)) for t, s, a in cells if s and a]
    if not cells:
        return None
    flatter = [t for t, s, a in cells if s < a]
    k, n = len(flatter), len(cells)
    status = "reproduced" if k == n else "contradicted" if 2 * k < n else "not reproduced at this scale"
    return Verdict(status, f"SAM flatter at ε={float(epsilon):g} on {k}/{n} tasks ({', '.join(t for t, _, _ in cells)})")


def _at_largest_tier(verdict: Callable[[Path, str], Verdict | None]) -> Callable[[Path], Verdict]:
    """A judge that speaks for the largest tier with records: `verdict(results_dir, tier)`."""
    def judge(root: Path) -> Verdict:
        for tier in TIERS:
            found = verdict(root / tier, tier)
            if found is not None:
                return Verdict(found.status, found.ours, tier)
        return Verdict("not run yet", "")
    return judge


_judge_flatness = _at_largest_tier(lambda d, tier: flatness_verdict(d, dim=get_profile(tier).sharpness.get("dim", 100)))


def kept_sparsity(scores: dict[float, float], tolerance: float = 0.01) -> float:
    """The highest sparsity up to which every score stays within `tolerance` of the unpruned one (sparsity 0)."""
    kept = 0.0
    for sparsity in sorted(scores):
        if scores[sparsity] < scores[0.0] - tolerance:
            break
        kept = sparsity
    return kept


def one_shot_verdict(results_dir: Path, tolerance: float = 0.01, safe_below: float = 0.3) -> Verdict | None:
    """Claim 14 (Fig. 7): no noticeable drop (more than `tolerance`, 1 point) below `safe_below` for either
    optimizer, and SAM keeping its unpruned score to at least Adam's sparsity on every task. Models that predict
    one class before pruning are left out. None without records."""
    curves: dict[tuple[str, str], dict[float, list[float]]] = {}
    for record in iter_records(results_dir, "oneshot") if Path(results_dir, "oneshot").is_dir() else []:
        if record["rows"][0].get("predicted_classes") == 1:  # a constant predictor: nothing to lose, says nothing
            continue
        curve = curves.setdefault((record["config"]["task"], record["config"]["optimizer"]), {})
        for row in record["rows"]:
            curve.setdefault(row["target_sparsity"], []).append(row["score"])
    means = {k: {s: sum(v) / len(v) for s, v in c.items()} for k, c in curves.items() if 0.0 in c}
    tasks = sorted({t for t, o in means if o == "adamw"} & {t for t, o in means if o == "sam"})
    if not tasks:
        return None
    kept = {(t, o): kept_sparsity(means[(t, o)], tolerance) for t in tasks for o in ("adamw", "sam")}
    below = max((s for s in means[(tasks[0], "sam")] if s < safe_below), default=0.0)
    safe = [k for k, v in kept.items() if v >= below]
    higher = [t for t in tasks if kept[(t, "sam")] > kept[(t, "adamw")]]
    lower = [t for t in tasks if kept[(t, "sam")] < kept[(t, "adamw")]]
    status = ("reproduced" if len(safe) == len(kept) and higher and not lower else
              "contradicted" if 2 * len(lower) > len(tasks) else "not reproduced at this scale")
    detail = ", ".join(f"{t} {kept[(t, 'adamw')]:.0%}/{kept[(t, 'sam')]:.0%}" for t in tasks)
    return Verdict(status, f"within {100 * tolerance:g} point of unpruned up to (Adam/SAM): {detail}; "
                           f"{len(safe)}/{len(kept)} models safe below {safe_below:.0%}")


_judge_one_shot = _at_largest_tier(lambda d, tier: one_shot_verdict(d))


def imp_curves(results_dir: Path, rewind: bool = True, l1: bool = False) -> dict[tuple[str, str], dict[float, float]]:
    """{(task, optimizer): {sparsity: mean score x 100 over seeds}} from the IMP (or standard-pruning) records;
    `l1=True` reads the runs with A.7's L1 penalty instead of the plain ones."""
    scores: dict[tuple[str, str], dict[float, list[float]]] = {}
    for record in iter_records(results_dir, "imp") if Path(results_dir, "imp").is_dir() else []:
        if record["settings"]["rewind"] != rewind or (record["config"].get("l1", 0.0) > 0) != l1:
            continue
        curve = scores.setdefault((record["config"]["task"], record["config"]["optimizer"]), {})
        for row in record["rows"]:
            curve.setdefault(row["target_sparsity"], []).append(100 * row["score"])
    return {k: {s: sum(v) / len(v) for s, v in c.items()} for k, c in scores.items()}


def _paired_tasks(curves: dict[tuple[str, str], Any]) -> list[str]:
    return sorted({t for t, o in curves if o == "adamw"} & {t for t, o in curves if o == "sam"})


NOISE_POINTS = 1.0  # a SAM - Adam difference smaller than this (points of the main metric) decides nothing


def _agreement(cells: list[tuple[str, float, float]], what: str) -> Verdict:
    """Verdict from (label, ours SAM - Adam, paper SAM - Adam) cells: does our sign agree with the paper's?

    Our differences within `NOISE_POINTS` of zero count neither way. Reproduced: every cell agrees and at least
    one is a task where the paper has SAM ahead (agreeing only on the paper's exceptions tests nothing of the
    claim); contradicted: more than half disagree; otherwise not reproduced at this scale."""
    clear = [c for c in cells if abs(c[1]) >= NOISE_POINTS]
    agree = [c for c in clear if (c[1] >= 0) == (c[2] >= 0)]
    k, n = len(agree), len(cells)
    status = ("reproduced" if k == n and any(c[2] > 0 for c in cells) else
              "contradicted" if 2 * (len(clear) - k) > n else "not reproduced at this scale")
    detail = ", ".join(f"{label} {ours:+.1f} (paper {paper:+.1f})" for label, ours, paper in cells)
    return Verdict(status, f"{what}, SAM − Adam: {detail}; same sign as the paper, beyond ±{NOISE_POINTS:g} point, "
                           f"on {k}/{n}")


def pruning_verdict(results_dir: Path, rewind: bool = True) -> Verdict | None:
    """Claims 2 (IMP, rewind=True) and 6 (standard pruning): SAM vs Adam at each task's reference sparsity
    (Table 5), compared in sign with the paper's difference. None without records at a reference sparsity."""
    from flatcompress.paper import REFERENCE_SPARSITY
    from flatcompress.report import paper_mean

    curves = imp_curves(results_dir, rewind)
    row = "IMP" if rewind else "Std"
    cells = []
    for task in _paired_tasks(curves):
        sparsity = REFERENCE_SPARSITY.get(task)
        if sparsity is None or sparsity not in curves[(task, "sam")] or sparsity not in curves[(task, "adamw")]:
            continue
        ours = curves[(task, "sam")][sparsity] - curves[(task, "adamw")][sparsity]
        paper = paper_mean("table5", (row, "SAM"), task) - paper_mean("table5", (row, "Adam"), task)
        cells.append((f"{task}@{sparsity:.0%}", ours, paper))
    return _agreement(cells, "at the reference sparsity") if cells else None


def pruned_beats_full_verdict(results_dir: Path) -> Verdict | None:
    """Claim 4: the SAM IMP ticket of RTE at 60% beats both full fine-tuned models (round 0 of each IMP)."""
    curves = imp_curves(results_dir, True)
    sam, adam = curves.get(("rte", "sam"), {}), curves.get(("rte", "adamw"), {})
    if 0.6 not in sam or 0.0 not in adam:
        return None
    beats = sam[0.6] > sam[0.0] and sam[0.6] > adam[0.0]
    return Verdict("reproduced" if beats else "not reproduced at this scale",
                   f"RTE SAM ticket at 60%: {sam[0.6]:.1f}; full SAM {sam[0.0]:.1f}, full Adam {adam[0.0]:.1f}")


def average_curve_verdict(results_dir: Path) -> Verdict | None:
    """Claim 5 (Fig. 1): the mean over tasks of SAM's IMP score is above Adam's at every sparsity."""
    curves = imp_curves(results_dir, True)
    tasks = _paired_tasks(curves)
    if not tasks:
        return None
    common = sorted(set.intersection(*(set(curves[(t, o)]) for t in tasks for o in ("adamw", "sam"))))
    gaps = {s: sum(curves[(t, "sam")][s] - curves[(t, "adamw")][s] for t in tasks) / len(tasks) for s in common}
    above = [s for s, g in gaps.items() if g >= NOISE_POINTS]
    below = [s for s, g in gaps.items() if g <= -NOISE_POINTS]
    k, n = len(above), len(gaps)
    status = "reproduced" if k == n else "contradicted" if 2 * len(below) > n else "not reproduced at this scale"
    detail = ", ".join(f"{s:.0%} {g:+.1f}" for s, g in gaps.items())
    return Verdict(status, f"mean SAM − Adam over {len(tasks)} task(s): {detail}; above by ±{NOISE_POINTS:g} point "
                           f"or more at {k}/{n} sparsities, below at {len(below)}")


def masked_runs(results_dir: Path) -> list[dict[str, Any]]:
    """Fine-tuning runs under a ticket: target task, fine-tuning optimizer, seed, score x 100 and the ticket's origin."""
    out = []
    for record in iter_records(results_dir, "finetune") if Path(results_dir, "finetune").is_dir() else []:
        origin = (record.get("masks") or {}).get("origin")
        if origin:
            config = record["config"]
            out.append({"task": config["task"], "optimizer": config["optimizer"], "seed": config["seed"],
                        "score": 100 * record["score"], **{f"mask_{k}": v for k, v in origin.items()}})
    return out


def _mean_cells(runs: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[tuple, float]:
    cells: dict[tuple, list[float]] = {}
    for run in runs:
        cells.setdefault(tuple(run[k] for k in keys), []).append(run["score"])
    return {k: sum(v) / len(v) for k, v in cells.items()}


def mask_verdict(results_dir: Path) -> Verdict | None:
    """Claim 7 (Table 6): under Adam fine-tuning, random mask < Adam-IMP mask < SAM-IMP mask on every task, each
    (task, sparsity) judged on the masks of that one sparsity (a ticket moved in from another task is not Table 6)."""
    own = [r for r in masked_runs(results_dir) if r["mask_task"] == r["task"] and r["mask_kind"] in ("imp", "random")]
    cells = _mean_cells([{**r, "mask": r["mask_optimizer"] or "random"} for r in own],
                        ("task", "mask_sparsity", "optimizer", "mask"))
    sets = sorted({(t, s) for t, s, o, m in cells
                   if o == "adamw" and all((t, s, o, k) in cells for k in ("random", "adamw", "sam"))})
    if not sets:
        return None
    scores = {(t, s): [cells[(t, s, "adamw", k)] for k in ("random", "adamw", "sam")] for t, s in sets}
    ordered = [ts for ts, (r, a, m) in scores.items() if r < a < m]
    k, n = len(ordered), len(sets)
    status = "reproduced" if k == n else "contradicted" if 2 * k < n else "not reproduced at this scale"
    detail = "; ".join(f"{t}@{s:.0%} {r:.1f} / {a:.1f} / {m:.1f}" for (t, s), (r, a, m) in scores.items())
    return Verdict(status, f"Adam fine-tuning over random / Adam / SAM masks: {detail}; ordered on {k}/{n}")


def transfer_verdict(results_dir: Path) -> Verdict | None:
    """Claim 8 (Fig. 4): a SAM ticket from another task scores higher on the target than an Adam ticket of the
    same sparsity, whichever optimizer fine-tunes it: reproduced when most (source, target, optimizer, sparsity)
    cells are positive by at least `NOISE_POINTS`, contradicted when most are negative by as much."""
    moved = [r for r in masked_runs(results_dir) if r["mask_kind"] == "imp" and r["mask_task"] != r["task"]]
    cells = _mean_cells(moved, ("mask_task", "task", "optimizer", "mask_sparsity", "mask_optimizer"))
    pairs = sorted({k[:4] for k in cells if (*k[:4], "sam") in cells and (*k[:4], "adamw") in cells})
    if not pairs:
        return None
    gaps = [cells[(*p, "sam")] - cells[(*p, "adamw")] for p in pairs]
    positive, negative = sum(g >= NOISE_POINTS for g in gaps), sum(g <= -NOISE_POINTS for g in gaps)
    mean = sum(gaps) / len(gaps)
    status = ("reproduced" if 2 * positive > len(gaps) and mean > 0 else
              "contradicted" if 2 * negative > len(gaps) else "not reproduced at this scale")
    return Verdict(status, f"SAM ticket − Adam ticket on the target task, beyond ±{NOISE_POINTS:g} point: positive "
                           f"in {positive}/{len(gaps)} (source, target, optimizer) cells, negative in {negative}; "
                           f"mean {mean:+.1f} points")


def l1_verdict(results_dir: Path) -> Verdict | None:
    """Claim 15 (A.7): Adam with L1 stays below SAM, averaged over the pruned sparsities, under IMP and standard
    pruning. A (task, mode) where SAM is not ahead of plain Adam by at least `NOISE_POINTS` has no SAM advantage
    for the penalty to explain: it is reported but decides nothing."""
    cells = []  # (label, Adam+L1 - SAM, SAM - Adam or None)
    for rewind in (True, False):
        l1, plain = imp_curves(results_dir, rewind, l1=True), imp_curves(results_dir, rewind)
        for (task, optimizer), curve in sorted(l1.items()):
            sam, adam = plain.get((task, "sam")), plain.get((task, "adamw"))
            common = [s for s in curve if s > 0 and sam and s in sam]
            if optimizer == "adamw" and common:
                gap = sum(curve[s] - sam[s] for s in common) / len(common)
                edge = sum(sam[s] - adam[s] for s in common) / len(common) if adam and all(
                    s in adam for s in common) else None
                cells.append((f"{task} {'IMP' if rewind else 'Std'}", gap, edge))
    if not cells:
        return None
    decided = [g for _, g, e in cells if e is None or e >= NOISE_POINTS]
    below = sum(g < 0 for g in decided)
    detail = "Adam+L1 − SAM, mean over pruned sparsities: " + ", ".join(
        f"{label} {gap:+.1f}" + ("" if edge is None else f" (SAM − Adam {edge:+.1f})") for label, gap, edge in cells)
    if not decided:
        return Verdict("not reproduced at this scale", detail + f"; SAM is not ahead of Adam by {NOISE_POINTS:g} point "
                       "or more here, so there is no SAM advantage for the penalty to match")
    status = "reproduced" if below == len(decided) else "contradicted" if 2 * below < len(decided) else \
        "not reproduced at this scale"
    return Verdict(status, detail)


def cofi_verdict(results_dir: Path) -> Verdict | None:
    """Claim 9 (Table 2): the student pruned with CoFi from a SAM teacher scores higher than the one from an
    Adam teacher; our SAM − Adam student gap per task against the paper's (accepted runs only)."""
    cells: dict[tuple[str, str], list[float]] = {}
    missed: list[str] = []
    for record in iter_records(results_dir, "cofi") if Path(results_dir, "cofi").is_dir() else []:
        key = (record["config"]["task"], record["config"]["optimizer"])
        if record["accepted"]:
            cells.setdefault(key, []).append(100 * record["score"])
        elif not math.isnan(paper_mean("table2", ("pruned", "Adam"), key[0])):
            missed.append(f"{key[0]} {OPTIMIZER_ROW[key[1]]} teacher at {record['sparsity']:.1%}")
    means = {k: sum(v) / len(v) for k, v in cells.items()}
    tasks = sorted({t for t, o in means if (t, "adamw") in means and (t, "sam") in means
                    and not math.isnan(paper_mean("table2", ("pruned", "Adam"), t))})  # Table 2's tasks only
    if not tasks:  # runs that missed the target sparsity compare students of different sizes: they decide nothing
        return Verdict("not reproduced at this scale", "no pair of runs within 1 point of the target sparsity "
                       f"(missed: {', '.join(missed)})") if missed else None
    return _agreement([(t, means[(t, "sam")] - means[(t, "adamw")],
                        paper_mean("table2", ("pruned", "SAM"), t) - paper_mean("table2", ("pruned", "Adam"), t))
                       for t in tasks], "CoFi student from a SAM teacher vs an Adam teacher")


def quantization_scores(results_dir: Path, setting: str = "torch-ao") -> dict[tuple[str, str, str], float]:
    """Mean fp32 and int8 scores x 100 per (task, optimizer, "full" | "int8") over seeds, in Table 8's metric
    (F1 for MRPC and QQP), from the `quantization` records with `setting` ("torch-ao": the paper's recipe).
    Models that predict a single class on the dev set are left out: they cannot lose accuracy."""
    from flatcompress.paper import TABLES

    cells: dict[tuple[str, str, str], list[float]] = {}
    for record in iter_records(results_dir, "quantization") if Path(results_dir, "quantization").is_dir() else []:
        row = next((r for r in record["rows"] if r["setting"] == setting), None)
        if row is None or record.get("fp32_predicted_classes") == 1:  # a constant predictor has nothing to lose
            continue
        task, optimizer = record["config"]["task"], record["config"]["optimizer"]
        split = next(iter(record["fp32_metrics"]))
        metric = TABLES["table8"].metric(task)
        for precision, metrics in (("full", record["fp32_metrics"]), ("int8", row["metrics"])):
            cells.setdefault((task, optimizer, precision), []).append(100 * metrics[split][metric])
    return {k: sum(v) / len(v) for k, v in cells.items()}


def quantization_verdict(results_dir: Path) -> Verdict | None:
    """Claim 10 (Table 8): SAM models lose less from int8 dynamic quantization than Adam models: our
    (SAM int8 − full) − (Adam int8 − full) compared in sign with the paper's, per task."""
    scores = quantization_scores(results_dir)
    tasks = sorted({t for t, o, p in scores if all((t, o2, p2) in scores for o2 in ("adamw", "sam")
                                                    for p2 in ("full", "int8"))
                    and not math.isnan(paper_mean("table8", ("full", "Adam"), t))})  # Table 8's tasks only
    if not tasks:
        return None

    def sam_minus_adam(score: Callable[[str, str], float]) -> float:
        """(SAM int8 − SAM full) − (Adam int8 − Adam full), from score(optimizer, precision)."""
        return (score("sam", "int8") - score("sam", "full")) - (score("adamw", "int8") - score("adamw", "full"))

    cells = [(t, sam_minus_adam(lambda o, p: scores[(t, o, p)]),
              sam_minus_adam(lambda o, p: paper_mean("table8", (p, OPTIMIZER_ROW[o]), t))) for t in tasks]
    return _agreement(cells, "change from int8 (positive: SAM loses less)")


def ptq_vs_qat_verdict(results_dir: Path) -> Verdict | None:
    """Claim 11 (Table 8): SAM + post-training int8 reaches Q8BERT's quantization-aware training on SST-2 and
    comes within 0.2 F1 on MRPC. Q8BERT is BERT-base, so only BERT-base records can test it."""
    scores = quantization_scores(results_dir)
    if not scores:
        return None
    models = {r["config"]["model"] for r in iter_records(results_dir, "quantization")}
    if models != {"bert-base-uncased"}:
        return Verdict("not run yet", f"needs BERT-base (the colab or paper tier): Q8BERT's QAT scores are for "
                                      f"BERT-base, these records are {', '.join(sorted(models))}")
    cells = [(t, scores[(t, "sam", "int8")], paper_mean("table8", ("QAT", "Ref"), t)) for t in ("sst2", "mrpc")
             if (t, "sam", "int8") in scores]
    if not cells:
        return None
    close = [t for t, ours, qat in cells if ours >= qat - 0.2]
    status = "reproduced" if len(close) == len(cells) else "not reproduced at this scale"
    return Verdict(status, ", ".join(f"{t}: SAM int8 {ours:.2f} vs QAT {qat:.2f}" for t, ours, qat in cells))


def _judge_sam_cost(root: Path) -> Verdict:
    record = benchmark_record("sam_vs_adamw")
    if record is None:
        return Verdict("not run yet", "")
    ratio = record["ratio"]
    status = "reproduced" if 1.5 <= ratio <= 2.1 else "contradicted"
    setup = record["setup"]
    return Verdict(status, f"SAM step = {ratio:.2f}x AdamW step ({setup['model']}, batch {setup['batch']}, "
                           f"length {setup['length']}, {record['provenance']['device_name']})", "benchmark")


CLAIMS: tuple[Claim, ...] = (
    Claim(1, "SAM finds flatter minima", "Table 3",
          "SAM has lower ε-sharpness than Adam on all 8 GLUE tasks at ε=5e-3 (e.g. SST-2 13.7 vs 29.9)",
          "train-flat", _judge_flatness),
    Claim(2, "IMP tickets: SAM ≥ Adam at reference sparsity", "Table 5",
          "SAM ≥ Adam on 7/9 tasks (RTE@60% 71.8 vs 63.7); not on QQP or CoLA", "lottery-tickets",
          _at_largest_tier(lambda d, tier: pruning_verdict(d, True))),
    Claim(3, "IMP tickets on GLUE test", "Table 1", "SAM > Adam in all 9 test columns", "lottery-tickets"),
    Claim(4, "A pruned SAM ticket beats the full models", "Fig. 2a, Table 5",
          "RTE SAM ticket at 60% (71.8) beats full SAM (67.0) and full Adam (67.6)", "lottery-tickets",
          _at_largest_tier(lambda d, tier: pruned_beats_full_verdict(d))),
    Claim(5, "Average GLUE curve", "Fig. 1", "SAM's average is above Adam's at every IMP sparsity 0-90%",
          "lottery-tickets", _at_largest_tier(lambda d, tier: average_curve_verdict(d))),
    Claim(6, "Standard pruning", "Table 5", "SAM > Adam at reference sparsity on 8/9 tasks (not MRPC)",
          "lottery-tickets", _at_largest_tier(lambda d, tier: pruning_verdict(d, False))),
    Claim(7, "Mask vs optimizer", "Table 6", "random ≪ Adam mask < SAM mask under Adam fine-tuning on 4 tasks",
          "mask-or-optimizer", _at_largest_tier(lambda d, tier: mask_verdict(d))),
    Claim(8, "Tickets that travel", "Fig. 4", "SAM tickets transfer better than Adam tickets", "tickets-travel",
          _at_largest_tier(lambda d, tier: transfer_verdict(d))),
    Claim(9, "Structured pruning with a SAM teacher", "Table 2",
          "a SAM teacher gives a better 95%-sparse CoFi student (SST-2 91.3 vs 90.2)", "structured-pruning",
          _at_largest_tier(lambda d, tier: cofi_verdict(d))),
    Claim(10, "Int8 post-training quantization", "Table 8",
          "SAM models lose less accuracy than Adam models on all 9 tasks (RTE −2.17 vs −10.83)", "quantization",
          _at_largest_tier(lambda d, tier: quantization_verdict(d))),
    Claim(11, "PTQ vs QAT", "Table 8", "SAM + PTQ reaches Q8BERT's QAT on SST-2 (92.39 vs 92.24)", "quantization",
          _at_largest_tier(lambda d, tier: ptq_vs_qat_verdict(d))),
    Claim(12, "SWA", "Tables 1, 4", "IMP with SWA beats IMP with Adam on all 8 GLUE test columns",
          "lottery-tickets"),
    Claim(13, "Sharpness after pruning", "Table 4", "SAM tickets are less sharp in 23/24 (task, ε) cells",
          "lottery-tickets"),
    Claim(14, "One-shot pruning", "Fig. 7", "no loss below ~30% sparsity; SAM keeps accuracy to higher sparsity",
          "pruning-without-retraining", _judge_one_shot),
    Claim(15, "ℓ1 control", "Figs. 10, 11", "Adam + ℓ1 does not match SAM's accuracy-sparsity curves",
          "mask-or-optimizer", _at_largest_tier(lambda d, tier: l1_verdict(d))),
    Claim(16, "Other models", "Figs. 14, 15", "SAM ≥ Adam under IMP for BERT-large and RoBERTa-base",
          "lottery-tickets"),
    Claim(17, "Cost of a SAM step", "§3.4.5", "a SAM step is 1.5-2x slower than an Adam step", "train-flat",
          _judge_sam_cost),
)


def scorecard(root: str | Path) -> list[dict[str, Any]]:
    """One row per claim with our verdict, read from the records under `root` (`results/`)."""
    root = Path(root)
    rows = []
    for claim in CLAIMS:
        if claim.id == 3:
            verdict = Verdict("not testable offline", "GLUE test labels are only on the GLUE server")
        elif claim.judge is None:
            verdict = Verdict("not run yet", "")
        else:
            verdict = claim.judge(root)
        rows.append({"claim": claim.id, "title": claim.title, "source": claim.source, "paper": claim.paper,
                     "ours": verdict.ours, "tier": verdict.tier or "", "status": verdict.status,
                     "chapter": claim.chapter})
    return rows
