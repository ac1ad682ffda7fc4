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

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from flatcompress.chapter import checkout_root
from flatcompress.profiles import get_profile
from flatcompress.records import iter_records

__all__ = ["Claim", "CLAIMS", "Verdict", "scorecard", "flatness_verdict", "VERDICTS"]

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


def _judge_flatness(root: Path) -> Verdict:
    for tier in TIERS:
        verdict = flatness_verdict(root / tier, dim=get_profile(tier).sharpness.get("dim", 100))
        if verdict is not None:
            return Verdict(verdict.status, verdict.ours, tier)
    return Verdict("not run yet", "")


def _judge_sam_cost(root: Path) -> Verdict:
    checkout = checkout_root()
    path = checkout / "benchmarks" / "results" / "sam_vs_adamw.json" if checkout else None
    if path is None or not path.is_file():
        return Verdict("not run yet", "")
    record: dict[str, Any] = json.loads(path.read_text())
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
          "SAM ≥ Adam on 7/9 tasks (RTE@60% 71.8 vs 63.7); not on QQP or CoLA", "lottery-tickets"),
    Claim(3, "IMP tickets on GLUE test", "Table 1", "SAM > Adam in all 9 test columns", "lottery-tickets"),
    Claim(4, "A pruned SAM ticket beats the full models", "Fig. 2a, Table 5",
          "RTE SAM ticket at 60% (71.8) beats full SAM (67.0) and full Adam (67.6)", "lottery-tickets"),
    Claim(5, "Average GLUE curve", "Fig. 1", "SAM's average is above Adam's at every IMP sparsity 0-90%",
          "lottery-tickets"),
    Claim(6, "Standard pruning", "Table 5", "SAM > Adam at reference sparsity on 8/9 tasks (not MRPC)",
          "lottery-tickets"),
    Claim(7, "Mask vs optimizer", "Table 6", "random ≪ Adam mask < SAM mask under Adam fine-tuning on 4 tasks",
          "mask-or-optimizer"),
    Claim(8, "Tickets that travel", "Fig. 4", "SAM tickets transfer better than Adam tickets", "tickets-travel"),
    Claim(9, "Structured pruning with a SAM teacher", "Table 2",
          "a SAM teacher gives a better 95%-sparse CoFi student (SST-2 91.3 vs 90.2)", "structured-pruning"),
    Claim(10, "Int8 post-training quantization", "Table 8",
          "SAM models lose less accuracy than Adam models on all 9 tasks (RTE −2.17 vs −10.83)", "quantization"),
    Claim(11, "PTQ vs QAT", "Table 8", "SAM + PTQ reaches Q8BERT's QAT on SST-2 (92.39 vs 92.24)", "quantization"),
    Claim(12, "SWA", "Tables 1, 4", "IMP with SWA beats IMP with Adam on all 8 GLUE test columns",
          "lottery-tickets"),
    Claim(13, "Sharpness after pruning", "Table 4", "SAM tickets are less sharp in 23/24 (task, ε) cells",
          "lottery-tickets"),
    Claim(14, "One-shot pruning", "Fig. 7", "no loss below ~30% sparsity; SAM keeps accuracy to higher sparsity",
          "pruning-without-retraining"),
    Claim(15, "ℓ1 control", "Figs. 10, 11", "Adam + ℓ1 does not match SAM's accuracy-sparsity curves",
          "mask-or-optimizer"),
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
