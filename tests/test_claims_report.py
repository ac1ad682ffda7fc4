"""Verdicts from records (built by `synthetic_records`), their calibration, paper-vs-ours tables, costs."""

from __future__ import annotations

import json
import math
import re

import pandas as pd
import pytest
from synthetic_records import Records

from flatcompress import stats
from flatcompress.book import claims, costs, report

SEEDS = (0, 1, 2)


# --- one builder per claim: records with a true effect `effect` (points / 100) in the paper's direction -----------

def flatness(r: Records, effect: float) -> claims.Verdict | None:
    for task in ("sst2", "rotten_tomatoes"):
        for optimizer in ("adamw", "sam"):
            for seed in SEEDS:
                run, _ = r.finetune(task, optimizer, seed, r.accuracy(0.85))
                shift = -effect * 20 if optimizer == "sam" else 0.0  # effect 0.1: SAM's φ e^2 = 7x smaller
                for subspace in (0, 1):
                    r.sharpness(run, math.exp(math.log(0.01) + shift + 0.3 * r.rng.standard_normal()), subspace)
    return claims.flatness_verdict(r.root)


def ticket_flatness(r: Records, effect: float) -> claims.Verdict | None:
    """Claim 13: the tickets' sharpness carries the effect; the full models' sharpness the opposite one, which the
    verdict must not read."""
    for task in ("sst2", "rotten_tomatoes"):
        for optimizer in ("adamw", "sam"):
            for seed in SEEDS:
                run, _ = r.finetune(task, optimizer, seed, r.accuracy(0.85))
                shift = -effect * 20 if optimizer == "sam" else 0.0
                r.sharpness(run, math.exp(math.log(0.01) + shift + 0.3 * r.rng.standard_normal()), pruned=0.6)
                r.sharpness(run, math.exp(math.log(0.01) - shift + 0.3 * r.rng.standard_normal()))
    verdict = claims.flatness_verdict(r.root, pruned=True)
    assert verdict is None or all(cell.endswith(" 60%") for cell in verdict.cells)
    if effect > 0:  # claim 1 reads the full models only, whose effect is the opposite one
        assert claims.flatness_verdict(r.root).status == "contradicted"
    return verdict


def _chains(r: Records, effect: float, tasks=("rte", "mrpc"), sparsities=(0.0, 0.5, 0.6), rewind=True,
            better="sam"):
    """Adam's chains and `better`'s, whose pruned rounds score `effect` higher; the rounds by task and optimizer."""
    out = {}
    for task in tasks:
        for optimizer in ("adamw", better):
            for seed in SEEDS:
                bonus = effect if optimizer == better else 0.0
                out.setdefault((task, optimizer), []).append(r.chain(
                    task, optimizer, seed, {s: r.accuracy(0.8 - 0.1 * s + (bonus if s else 0.0)) for s in sparsities},
                    rewind))
    return out


def imp_reference(r: Records, effect: float) -> claims.Verdict | None:
    _chains(r, effect)
    return claims.pruning_verdict(r.root, True)


def standard_pruning(r: Records, effect: float) -> claims.Verdict | None:
    _chains(r, effect, rewind=False)
    return claims.pruning_verdict(r.root, False)


def swa(r: Records, effect: float) -> claims.Verdict | None:
    """Claim 12: SWA's IMP tickets score `effect` higher than Adam's; their sharpness (Table 4) joins the text only."""
    _chains(r, effect, better="sam")
    assert claims.swa_verdict(r.root) is None  # no SWA chain: not run yet, whatever Adam and SAM show
    rounds = _chains(r, effect, better="swa")
    for optimizer in ("adamw", "swa"):
        for chain in rounds[("rte", optimizer)]:
            r.sharpness(chain[0.6][0], math.exp(math.log(0.01) + 0.3 * r.rng.standard_normal()), pruned=0.6)
    verdict = claims.swa_verdict(r.root)
    assert "SWA − Adam at the reference sparsity" in verdict.ours and "Table 4:" in verdict.ours
    assert "log(φ_SWA / φ_Adam) of IMP tickets" in verdict.ours and "GLUE test set" in verdict.ours
    assert set(verdict.cells) == {"rte@60%", "mrpc@50%"}
    return verdict


def other_models(r: Records, effect: float) -> claims.Verdict | None:
    """Claim 16: BERT-large's and RoBERTa-base's SAM chains score `effect` higher over the pruned rounds."""
    _chains(r, effect, tasks=("rte",))  # chains that name no model: the tier's own, which claim 16 must not read
    assert claims.other_models_verdict(r.root) is None
    for model in ("bert-large-uncased", "roberta-base"):
        for optimizer in ("adamw", "sam"):
            for seed in SEEDS:
                bonus = effect if optimizer == "sam" else 0.0
                r.chain("rte", optimizer, seed, {s: r.accuracy(0.7 - 0.1 * s + (bonus if s else 0.0))
                                                 for s in (0.0, 0.5, 0.6)}, model=model)
    verdict = claims.other_models_verdict(r.root)
    assert set(verdict.cells) == {"bert-large-uncased rte", "roberta-base rte"} and verdict.tasks == ("rte",)
    return verdict


def ticket_beats_full(r: Records, effect: float) -> claims.Verdict | None:
    """Claim 4 on its two tasks; MRPC's chains, with the opposite effect, are not among them and must not be read."""
    for task, sign in (("rte", 1), ("sst2", 1), ("mrpc", -1)):
        for optimizer in ("adamw", "sam"):
            for seed in SEEDS:
                r.chain(task, optimizer, seed, {0.0: r.accuracy(0.75), 0.6: r.accuracy(0.75 + sign * effect)})
    verdict = claims.pruned_beats_full_verdict(r.root)
    assert verdict.tasks == ("rte", "sst2") and set(verdict.cells) == {
        f"{t}@60% − full {o}" for t in ("rte", "sst2") for o in ("SAM", "Adam")}
    return verdict


def average_curve(r: Records, effect: float) -> claims.Verdict | None:
    for task in ("rte", "mrpc"):
        for optimizer in ("adamw", "sam"):
            for seed in SEEDS:
                bonus = effect if optimizer == "sam" else 0.0
                r.chain(task, optimizer, seed, {s: r.accuracy(0.8 - 0.1 * s + bonus) for s in (0.0, 0.5)})
    return claims.average_curve_verdict(r.root)


def _tickets(r: Records):
    """IMP chains (the tickets' sources, all healthy) of two tasks."""
    for task in ("rte", "mrpc"):
        for optimizer in ("adamw", "sam"):
            for seed in SEEDS:
                r.chain(task, optimizer, seed, {0.0: r.accuracy(0.8), 0.5: r.accuracy(0.75)})


def _origin(kind, task, optimizer, seed, sparsity=0.5):
    return {"kind": kind, "task": task, "optimizer": optimizer, "seed": seed, "sparsity": sparsity}


def masks(r: Records, effect: float) -> claims.Verdict | None:
    _tickets(r)
    for seed in SEEDS:
        for mask, bonus in (("random", 0.0), ("adamw", effect), ("sam", 2 * effect)):
            kind = "random" if mask == "random" else "imp"
            r.finetune("mrpc", "adamw", seed, r.accuracy(0.7 + bonus),
                       origin=_origin(kind, "mrpc", None if kind == "random" else mask, seed))
    return claims.mask_verdict(r.root)


def transfer(r: Records, effect: float) -> claims.Verdict | None:
    _tickets(r)
    for source, target in (("rte", "mrpc"), ("mrpc", "rte")):
        for optimizer in ("adamw", "sam"):
            for seed in SEEDS:
                for ticket in ("adamw", "sam"):
                    bonus = effect if ticket == "sam" else 0.0
                    r.finetune(target, optimizer, seed, r.accuracy(0.7 + bonus),
                               origin=_origin("imp", source, ticket, seed))
    return claims.transfer_verdict(r.root)


def l1_control(r: Records, effect: float) -> claims.Verdict | None:
    sparsities = (0.0, 0.5)
    for seed in SEEDS:  # SAM clearly ahead of Adam; Adam + l1 below SAM by `effect`
        r.chain("mrpc", "adamw", seed, {s: r.accuracy(0.7) for s in sparsities})
        r.chain("mrpc", "sam", seed, {s: r.accuracy(0.8) for s in sparsities})
        r.chain("mrpc", "adamw", seed, {s: r.accuracy(0.8 - effect) for s in sparsities}, l1=1e-5)
    return claims.l1_verdict(r.root)


def cofi(r: Records, effect: float) -> claims.Verdict | None:
    for optimizer in ("adamw", "sam"):
        for seed in SEEDS:
            teacher, latent = r.finetune("sst2", optimizer, seed, r.accuracy(0.85))
            r.cofi(teacher, latent, r.accuracy(0.8 + (effect if optimizer == "sam" else 0.0)))
    return claims.cofi_verdict(r.root)


def quantization(r: Records, effect: float) -> claims.Verdict | None:
    for task in ("sst2", "rte"):
        for optimizer in ("adamw", "sam"):
            for seed in SEEDS:
                run, latent = r.finetune(task, optimizer, seed, r.accuracy(0.8))
                loss = 0.03 - (effect if optimizer == "sam" else 0.0)
                r.quantization(run, latent, run["score"] - loss)
    return claims.quantization_verdict(r.root)


def ptq_vs_qat(r: Records, effect: float) -> claims.Verdict | None:
    """Claim 11 with our own QAT runs: SAM + PTQ scores `effect` above Adam + QAT."""
    for task in ("sst2", "rte"):
        for seed in SEEDS:
            sam, latent = r.finetune(task, "sam", seed, r.accuracy(0.85))
            r.quantization(sam, latent, sam["score"] - 0.01 + effect)
            qat, latent = r.finetune(task, "adamw", seed, r.accuracy(0.85))
            r.quantization(qat, latent, qat["score"] - 0.01, setting="qat-int8")
    verdict = claims.ptq_vs_qat_verdict(r.root)
    assert "side by side" in verdict.ours and set(verdict.cells) == {"sst2", "rte"}
    assert "sst2" in verdict.ours and "(paper +0.2)" in verdict.ours and "rte" in verdict.ours  # SST-2: 92.39 − 92.24
    return verdict


def test_claim_11_sets_sam_ptq_against_adam_qat_alone(tmp_path):
    """SAM + QAT runs (the tier may train them too) are neither the QAT side of claim 11 nor its left-out models."""
    verdict = ptq_vs_qat(Records(tmp_path, seed=11), effect=0.2)
    r = Records(tmp_path, seed=12)
    for task in ("sst2", "rte"):
        for seed in SEEDS:
            sam_qat, latent = r.finetune(task, "sam", seed, 0.5)  # a SAM + QAT run that did not train
            r.quantization(sam_qat, latent, 0.95, setting="qat-int8")
    again = claims.ptq_vs_qat_verdict(tmp_path)
    assert again.gated == verdict.gated == ()
    assert again.estimate.value == pytest.approx(verdict.estimate.value)


def one_shot(r: Records, effect: float) -> claims.Verdict | None:
    for task in ("sst2", "mrpc"):
        for optimizer in ("adamw", "sam"):
            for seed in SEEDS:
                run, latent = r.finetune(task, optimizer, seed, r.accuracy(0.85))
                kept = effect if optimizer == "sam" else 0.0
                r.oneshot(run, latent, {0.0: 0.0, 0.3: run["score"] - 0.01,
                                        0.5: run["score"] - 0.08 + kept, 0.6: run["score"] - 0.15 + kept})
    return claims.one_shot_verdict(r.root)


BUILDERS = {1: flatness, 2: imp_reference, 4: ticket_beats_full, 5: average_curve, 6: standard_pruning, 7: masks,
            8: transfer, 9: cofi, 10: quantization, 11: ptq_vs_qat, 12: swa, 13: ticket_flatness, 14: one_shot, 15: l1_control, 16: other_models}


@pytest.mark.parametrize("claim", sorted(BUILDERS))
def test_a_clear_effect_in_the_papers_direction_is_reproduced(tmp_path, claim):
    verdict = BUILDERS[claim](Records(tmp_path, seed=claim), effect=0.2)
    assert verdict.status == "reproduced", verdict


@pytest.mark.parametrize("claim", sorted(BUILDERS))
def test_without_an_effect_verdicts_rarely_decide(tmp_path, claim):
    """Calibration: both optimizers (or masks, or teachers) drawn from one distribution, 3 seeds each; "reproduced"
    or "contradicted" in at most about 5% of seeded trials. 60 trials per claim keep CI short: the bound 6/60 catches
    a miscalibrated rule (inverse-variance pooling gave 8-9.5% over 200 trials); 200 trials per claim give 2-6%."""
    trials, decided = 60, 0
    for trial in range(trials):
        verdict = BUILDERS[claim](Records(tmp_path / str(trial), seed=1000 * claim + trial), effect=0.0)
        decided += verdict.status in ("reproduced", "contradicted")
    assert decided <= 6


@pytest.mark.parametrize("claim", [4, 5, 7])
def test_a_joint_verdict_says_what_size_of_effect_the_tier_could_not_tell_from_none(tmp_path, claim):
    """Claims judged on several differences at once say, when undecided, how wide the widest interval that includes 0
    is (an interval that excludes 0 says nothing about what the tier cannot tell)."""
    undecided = BUILDERS[claim](Records(tmp_path / "none", seed=300 + claim), effect=0.0)
    assert undecided.status == "inconclusive at this scale"
    widest = re.search(r"the widest interval that includes 0 is ±([0-9.]+) points wide: this tier cannot tell",
                       undecided.ours)
    assert widest and float(widest.group(1)) > 0
    if claim == 5:  # its cells are the very estimates judged: one per sparsity
        spanning = [e.half_width for e in undecided.cells.values() if e.low <= 0 <= e.high]
        assert float(widest.group(1)) == round(max(spanning), 1)
    decided = BUILDERS[claim](Records(tmp_path / "clear", seed=300 + claim), effect=0.2)
    assert decided.status == "reproduced" and "cannot tell" not in decided.ours


def test_an_interval_that_excludes_zero_with_too_few_seeds_says_seeds_are_missing(tmp_path):
    """One seed a side: undecided, but not because the interval is too wide to tell an effect from none."""
    r = Records(tmp_path, seed=9)
    for optimizer, accuracy in (("adamw", 0.7), ("sam", 0.9)):
        run, latent = r.finetune("sst2", optimizer, 0, r.accuracy(accuracy))
        r.quantization(run, latent, run["score"] - (0.01 if optimizer == "sam" else 0.2))
    verdict = claims.quantization_verdict(tmp_path)
    assert verdict.status == "inconclusive at this scale" and verdict.estimate.low > 0
    assert "a decision needs 3 seeds on every side" in verdict.ours and "cannot tell" not in verdict.ours
    # one seed of a per-model scalar (log φ) has no interval at all: the note must not claim one excludes 0
    for optimizer, phi in (("adamw", 0.02), ("sam", 0.01)):
        run, _ = r.finetune("rotten_tomatoes", optimizer, 0, r.accuracy(0.85))
        r.sharpness(run, phi)
    flat = claims.flatness_verdict(tmp_path)
    assert flat.status == "inconclusive at this scale" and "(no interval: 1 seed)" in flat.ours
    assert flat.ours.endswith("; a decision needs 3 seeds on every side"), flat.ours


def test_a_tiers_imp_verdicts_read_its_own_models_chains_and_claim_16_the_others(tmp_path):
    r = Records(tmp_path / "cpu", seed=5)  # a folder named after a tier: its model is minilm-l6
    for model, bonus in (("minilm-l6", 0.0), ("roberta-base", 0.2)):
        for optimizer in ("adamw", "sam"):
            for seed in SEEDS:
                r.chain("rte", optimizer, seed, {0.0: 0.75, 0.6: 0.7 + (bonus if optimizer == "sam" else 0.0)},
                        model=model)
    assert {c.architecture for c in claims.imp_chains(r.root)} == {"minilm-l6"}
    assert {c.architecture for c in claims.imp_chains(r.root, model=None)} == {"minilm-l6", "roberta-base"}
    assert abs(claims.pruning_verdict(r.root).cells["rte@60%"].value) < 0.06  # RoBERTa's +0.2 would make it ~0.1
    assert set(claims.other_models_verdict(r.root).cells) == {"roberta-base rte"}


def test_one_tasks_column_is_decided_by_its_own_cell(tmp_path):
    r = Records(tmp_path, seed=6)
    _chains(r, 0.0, tasks=("mrpc",))
    _chains(r, 0.2, tasks=("rte",))  # only RTE's SAM tickets are better
    pooled = claims.pruning_verdict(tmp_path, True)
    rte, mrpc = claims.task_verdict(pooled, "rte"), claims.task_verdict(pooled, "mrpc")
    assert rte.status == "reproduced" and rte.estimate is pooled.cells["rte@60%"] and rte.tasks == ("rte",)
    assert rte.ours.startswith("rte@60%: +") and mrpc.estimate.low < 0 < mrpc.estimate.high
    assert claims.task_verdict(pooled, "squad") is None and claims.task_verdict(None, "rte") is None  # not run yet


def test_the_gate_leaves_out_and_names_models_that_did_not_train(tmp_path):
    r = Records(tmp_path, seed=3)
    for optimizer in ("adamw", "sam"):
        for seed in SEEDS:
            accuracy = 0.5 if (optimizer, seed) == ("sam", 2) else r.accuracy(0.85)  # a coin: at its floor
            run, latent = r.finetune("sst2", optimizer, seed, accuracy)
            r.quantization(run, latent, run["score"] - 0.01)
    verdict = claims.quantization_verdict(tmp_path)
    assert len(verdict.gated) == 1 and verdict.gated[0].startswith("sst2 SAM seed 2") and "floor" in verdict.gated[0]
    assert verdict.status == "inconclusive at this scale" and verdict.seeds == 2  # 2 healthy SAM seeds: too few


def test_table_3_magnitudes_are_of_full_models_not_tickets(tmp_path):
    r = Records(tmp_path, seed=7)
    for optimizer, phi in (("adamw", 30.0), ("sam", 20.0)):
        run, _ = r.finetune("sst2", optimizer, 0, 0.9)
        r.sharpness(run, phi)
        r.sharpness(run, 1000.0, pruned=0.6)  # a ticket's (Table 4): not one of Table 3's cells
    verdict = claims.sharpness_magnitude(tmp_path)
    assert verdict.status == "reproduced" and "median φ(0.005) over 2 measurement(s): 25" in verdict.ours


def test_no_healthy_pair_is_inconclusive(tmp_path):
    r = Records(tmp_path, seed=4)
    for optimizer in ("adamw", "sam"):
        for seed in SEEDS:
            r.chain("rte", optimizer, seed, {0.0: 0.5 if optimizer == "sam" else 0.8, 0.6: 0.7}, True)
    verdict = claims.pruned_beats_full_verdict(tmp_path)
    assert verdict.status == "inconclusive at this scale" and "no healthy pair" in verdict.ours
    assert len(verdict.gated) == 3


def test_claim_4_is_judged_on_sst2_alone_where_a_tier_has_no_rte(tmp_path):
    """The paper says it of RTE and SST-2 (Fig. 2); a tier without RTE still gets a verdict, with SST-2's paper gaps:
    93.2 − 93.1 against full SAM and 93.2 − 92.7 against full Adam (Table 5)."""
    r = Records(tmp_path, seed=11)
    for optimizer in ("adamw", "sam"):
        for seed in SEEDS:
            r.chain("sst2", optimizer, seed, {0.0: r.accuracy(0.75), 0.6: r.accuracy(0.95)})
    verdict = claims.pruned_beats_full_verdict(tmp_path)
    assert verdict.status == "reproduced" and verdict.tasks == ("sst2",)
    assert "sst2@60%" in verdict.ours and "(paper +0.1)" in verdict.ours and "(paper +0.5)" in verdict.ours
    assert claims.pruned_beats_full_verdict(tmp_path / "none") is None


def test_scorecard_has_every_claim_with_a_known_status(tmp_path):
    (tmp_path / "results").mkdir()
    rows = claims.scorecard(tmp_path / "results")
    assert [r["claim"] for r in rows] == list(range(1, 18))
    assert {r["status"] for r in rows} <= set(claims.VERDICTS)
    assert rows[0]["status"] == "not run yet" and rows[2]["status"] == "not testable offline"
    assert {"interval", "seeds", "tasks", "gated out", "reason"} <= set(rows[0])


def test_sam_cost_is_judged_on_the_interval_of_the_ratio():
    steps = {"adamw": [1.0, 1.1, 0.9, 1.0] * 5, "sam": [1.8, 1.9, 1.7, 1.8] * 5}
    record = {"seconds_per_step": steps, "setup": {"model": "m", "batch": 32, "length": 64},
              "provenance": {"device_name": "cpu"}}
    assert claims.sam_cost_verdict(record).status == "reproduced"
    assert claims.sam_cost_verdict({**record, "seconds_per_step": {**steps, "sam": [3.0] * 20}}).status == "contradicted"
    assert claims.sam_cost_verdict(None).status == "not run yet"


def test_paper_vs_ours_puts_the_papers_cell_next_to_ours():
    summary = report.summarize([{"task": "rte", "optimizer": "sam", "seed": s, "score": v} for s, v in
                                enumerate((60.0, 62.0))] +
                               [{"task": "rotten_tomatoes", "optimizer": "adamw", "seed": 0, "score": 78.9}], "score")
    table = report.paper_vs_ours(summary, "table5", ("Full FT",))
    # two seeds, 60 and 62: the bootstrap's mean takes 60, 61, 62; rescaled by sqrt(2) and t_1 / z, ±9.17 around 61
    half = math.sqrt(2) * 12.7062 / 1.95996
    assert table.to_dict("records") == [
        {"task": "rte", "optimizer": "SAM", "paper (BERT-base)": "67.0 ± 0.8",
         "ours": f"61.0 [{61 - half:.1f}, {61 + half:.1f}]", "seeds": 2, "did not train": 0},
        {"task": "rotten_tomatoes", "optimizer": "Adam", "paper (BERT-base)": "–", "ours": "78.9", "seeds": 1,
         "did not train": 0}]
    assert pd.isna(report.paper_mean("table3", ("5e-3", "SAM"), "rotten_tomatoes"))


def test_a_positive_quantity_is_summarized_on_the_log_scale_and_its_interval_stays_positive():
    rows = [{"task": "sst2", "optimizer": "sam", "seed": s, "phi": v} for s, v in enumerate((0.01, 1.0))]
    # the arithmetic mean 0.505 with the same bootstrap: ±0.495 x 9.17, below zero
    assert report.summarize(rows, "phi").low.item() < 0
    row = report.summarize(rows, "phi", log=True).iloc[0]
    # log values ln 0.01 and 0, 2.303 either side of their mean: the geometric mean 0.1, and exp(±2.303 x 9.17)
    half = math.log(100) / 2 * math.sqrt(2) * 12.7062 / 1.95996
    assert row["mean"] == pytest.approx(0.1)
    assert row["low"] == pytest.approx(0.1 * math.exp(-half), rel=1e-3) and row["low"] > 0
    assert row["high"] == pytest.approx(0.1 * math.exp(half), rel=1e-3)
    # φ = 0 (a model that did not train) has no geometric mean: the plain mean, no interval
    row = report.summarize([{**rows[0], "phi": 0.0}, rows[1]], "phi", log=True).iloc[0]
    assert row["mean"] == 0.5 and math.isnan(row["low"]) and report.interval_cell(row["mean"], row["low"],
                                                                                   row["high"], 2) == "0.50"


def test_gpu_hours_come_from_the_plan_and_the_measured_throughput(tmp_path):
    from flatcompress.profiles import get_profile
    from flatcompress.sweep.jobs import Job

    job = Job("ft", "train-flat", "colab", "finetune", {"task": "rte", "optimizer": "sam", "seed": 0})
    assert costs.job_passes(job, get_profile("colab")) == pytest.approx(10 * (2_490 * 2 + 277 / 3))  # 10 epochs
    hours, source = costs.plan_gpu_hours("colab", "T4", gpu_check=tmp_path / "none.json")
    assert source == "reference value, not measured here"
    # a gpu-check record of a T4 measuring twice the reference throughput halves every estimate
    rows = [{"model": "bert-base (random init)", "precision": "fp16", "optimizer": "adamw", "examples_per_second": 300.0}]
    (tmp_path / "gpu_check.json").write_text(json.dumps({"device": "Tesla T4", "bf16_native": False, "checks": [
        {"check": "throughput", "status": "passed", "rows": rows}]}))
    measured, source = costs.plan_gpu_hours("colab", "T4", gpu_check=tmp_path / "gpu_check.json")
    assert source == "measured on Tesla T4 (fp16)"
    assert measured == pytest.approx({chapter: h / 2 for chapter, h in hours.items()})
    # the colab tier's promise: each chapter, alone on a fresh runtime, fits one Colab session
    assert max(costs.chapter_gpu_hours("colab", "T4").values()) <= 3.0
    assert max(costs.chapter_gpu_hours("colab", "A100").values()) <= 0.5
    with pytest.raises(ValueError, match="measured"):
        costs.plan_gpu_hours("cpu")
    with pytest.raises(ValueError, match="make gpu-check"):
        costs.throughput("MI300")



def test_the_cost_ledger_counts_each_record_once_for_the_chapter_that_first_needs_it(tmp_path):
    from flatcompress.records import write_record

    def record(name, seconds, threads=1, **fields):
        fields.setdefault("kind", "finetune")
        fields.setdefault("config", {"task": "sst2"})
        write_record(tmp_path / fields["kind"] / f"{name}.json",
                     {**fields, "wall_time_s": seconds, "provenance": {"torch_threads": threads}})

    record("full", 120, threads=2)  # full fine-tuning: Train flat
    record("round", 60, start={"kind": "weights"}, masks={"sparsity": 0.5})  # an IMP round: Lottery tickets
    record("l1", 30, config={"task": "sst2", "l1": 1e-4}, start={"kind": "weights"})  # the l1 control
    record("same", 30, masks={"origin": {"task": "sst2"}})  # a ticket of the same task: Mask or optimizer
    record("other", 90, masks={"origin": {"task": "rte"}})  # a ticket of another task: Tickets travel
    record("curve", 6, kind="oneshot")
    write_record(tmp_path / "cofi" / "student.json", {"heads": 3})  # a model file's description: not a record
    assert costs.chapter_minutes(tmp_path) == pytest.approx(
        {"train-flat": 2.0, "lottery-tickets": 1.0, "mask-or-optimizer": 1.0, "tickets-travel": 1.5,
         "pruning-without-retraining": 0.1})
    assert costs.chapter_minutes(tmp_path, cpu=True)["train-flat"] == pytest.approx(4.0)  # two threads
    assert costs.measured_minutes(tmp_path) == pytest.approx(
        {"finetune": 2.0, "imp": 1.5, "tickets": 2.0, "oneshot": 0.1})
    assert costs.chapter_minutes(tmp_path / "nothing") == {}


def test_the_cost_estimates_know_the_size_of_every_task():
    from flatcompress.book import costs
    from flatcompress.data.bundled import read_bundled
    from flatcompress.tasks import TASKS, get_task

    assert set(costs.TRAIN_SIZES) == set(costs.DEV_SIZES) == set(TASKS)  # a plan on any task can be estimated
    for name in ("rotten_tomatoes", "reuters8"):
        data = read_bundled(get_task(name))
        assert (len(data["train"]), len(data["validation"])) == (costs.TRAIN_SIZES[name], costs.DEV_SIZES[name])


def test_side_by_side_marks_an_optimizer_a_setting_does_not_run():
    """Table 5 at `cpu`: SWA runs IMP with rewinding only, so the standard-pruning row has no SWA cells: "–", as the
    paper's missing cells are, never NaN."""
    rows = [("IMP", "Adam", "91.7", "80.8"), ("IMP", "SAM", "93.2", "83.4"), ("IMP", "SWA", "–", "81.2"),
            ("Std", "Adam", "91.1", "81.8"), ("Std", "SAM", "92.1", "84.3")]
    table = pd.DataFrame([{"setting": s, "task": "sst2", "optimizer": o, "paper (BERT-base)": p, "ours": v,
                           "seeds": 3} for s, o, p, v in rows])
    wide = report.side_by_side(table, ["setting", "task"])
    assert list(wide.columns) == ["paper (BERT-base), Adam", "paper (BERT-base), SAM", "paper (BERT-base), SWA",
                                  "ours, Adam", "ours, SAM", "ours, SWA", "seeds"]
    assert wide.loc[("Std", "sst2")].tolist() == ["91.1", "92.1", "–", "81.8", "84.3", "–", 3]
    assert wide.loc[("IMP", "sst2"), "ours, SWA"] == "81.2"


def test_a_cell_table_prints_the_estimates_as_the_verdicts_do():
    """The same minus sign and digits as `Estimate.text`, and "–" for a cell without an interval (one seed)."""
    cells = {"a": stats.compare_scalars([(1, [-0.02, -0.03, -0.01])], scale=100),
             "b": stats.compare_scalars([(1, [0.5])], scale=100)}
    table = report.estimates_table(cells)
    assert table["estimate"].tolist() == ["−2.0", "+50.0"]
    low, high = cells["a"].low * 100, cells["a"].high * 100
    assert table["95% interval"][0] == f"[{low:+.1f}, {high:+.1f}]".replace("-", "−") and "-" not in table.to_string()
    assert table["95% interval"][1] == "–" and cells["a"].text(1) == f"−2.0 {table['95% interval'][0]}"
    assert table["seeds"].tolist() == [3, 1]
