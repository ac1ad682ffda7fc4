"""Pruning: the prunable set, exact global magnitude and random masks, mask files, IMP (resumable), one-shot, L1."""

from __future__ import annotations

import pytest
import torch

from flatcompress import finetune, get_task
from flatcompress.config import FinetuneConfig
from flatcompress.masks import masks_sparsity, prunable_count, prunable_names
from flatcompress.models import load_model
from flatcompress.predictions import decode_array
from flatcompress.pruning.imp import check_schedule, imp
from flatcompress.pruning.magnitude import head_names, magnitude_masks, meta_model, random_masks
from flatcompress.pruning.mask_files import load_masks, save_masks
from flatcompress.pruning.oneshot import one_shot_sweep
from flatcompress.records import config_key, read_record
from flatcompress.training import StartingPoint, starting_model


def _tiny():
    return load_model("tiny", get_task("rotten_tomatoes"))


def _removed(masks) -> int:
    return sum(int((~m).sum()) for m in masks.values())


# --- the prunable set ------------------------------------------------------------------------------------------

def test_bert_base_has_85_524_480_prunable_weights_from_its_config():
    assert prunable_count(meta_model("bert-base")) == 12 * (4 * 768**2 + 2 * 768 * 3072) + 768**2 == 85_524_480


@pytest.mark.parametrize("architecture, head, expected", [
    ("bert-large", "classification", 24 * (4 * 1024**2 + 2 * 1024 * 4096) + 1024**2),
    ("roberta-base", "classification", 12 * (4 * 768**2 + 2 * 768 * 3072)),  # its head's dense layer is not prunable
    ("bert-base", "qa", 12 * (4 * 768**2 + 2 * 768 * 3072)),  # recent QA models have no pooler
    ("minilm-l6", "classification", 6 * (4 * 384**2 + 2 * 384 * 1536) + 384**2),
])
def test_prunable_counts_of_other_models(architecture, head, expected):
    assert prunable_count(meta_model(architecture, head)) == expected


def test_prunable_set_excludes_embeddings_biases_layernorm_and_head():
    model = _tiny()
    names = prunable_names(model)
    assert len(names) == 2 * 6 + 1 and names[-1] == "bert.pooler.dense.weight"
    assert all(n.endswith(".weight") and "embeddings" not in n and "LayerNorm" not in n for n in names)
    assert not set(names) & set(head_names(model)) and head_names(model) == ["classifier.weight", "classifier.bias"]
    assert "bert.pooler.dense.weight" not in prunable_names(model, include_pooler=False)


def test_a_model_without_an_encoder_is_refused():
    with pytest.raises(ValueError, match="no BERT-style encoder"):
        prunable_names(torch.nn.Linear(3, 3))


# --- masks -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.37, 0.9, 0.999])
def test_magnitude_masks_remove_exactly_the_smallest_weights(sparsity):
    model = _tiny()
    names = prunable_names(model)
    params = dict(model.named_parameters())
    total = prunable_count(model)
    masks = magnitude_masks(model, sparsity, names)
    assert list(masks) == names and _removed(masks) == round(sparsity * total)
    if 0 < sparsity:
        removed = torch.cat([params[n].detach().abs()[~masks[n]] for n in names])
        kept = torch.cat([params[n].detach().abs()[masks[n]] for n in names])
        assert removed.max() <= kept.min()


def test_ties_are_broken_by_position_deterministically():
    model = _tiny()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.5)
    masks = magnitude_masks(model, 0.25)
    flat = torch.cat([m.flatten() for m in masks.values()])
    k = round(0.25 * flat.numel())
    assert not flat[:k].any() and flat[k:].all()
    assert all(torch.equal(a, b) for a, b in zip(masks.values(), magnitude_masks(model, 0.25).values()))


def test_iterative_masks_never_regrow_and_cannot_go_down():
    model = _tiny()
    first = magnitude_masks(model, 0.3)
    with torch.no_grad():  # make the pruned weights large: they must stay pruned all the same
        for name, p in model.named_parameters():
            if name in first:
                p[~first[name]] = 10.0
    second = magnitude_masks(model, 0.5, previous=first)
    assert _removed(second) == round(0.5 * prunable_count(model))
    assert all(not (second[n] & ~first[n]).any() for n in first)
    with pytest.raises(ValueError, match="do not grow back"):
        magnitude_masks(model, 0.2, previous=first)


@pytest.mark.parametrize("bad", [1.0, 1.5, -0.1])
def test_sparsity_outside_zero_one_is_refused(bad):
    with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\)"):
        magnitude_masks(_tiny(), bad)
    with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\)"):
        random_masks(_tiny(), bad)


def test_random_masks_are_exact_seeded_and_spread():
    model = _tiny()
    a, b, c = random_masks(model, 0.6, seed=1), random_masks(model, 0.6, seed=1), random_masks(model, 0.6, seed=2)
    assert _removed(a) == round(0.6 * prunable_count(model))
    assert all(torch.equal(a[n], b[n]) for n in a) and not all(torch.equal(a[n], c[n]) for n in a)
    per_tensor = [1 - float(m.float().mean()) for m in a.values() if m.numel() > 1000]
    assert max(per_tensor) - min(per_tensor) < 0.05


# --- mask files ------------------------------------------------------------------------------------------------

def test_mask_files_round_trip_at_one_bit_per_weight(tmp_path):
    model = _tiny()
    masks = magnitude_masks(model, 0.4)
    path = save_masks(tmp_path / "m.fcmask", masks, "tiny", meta={"task": "rotten_tomatoes"})
    loaded = load_masks(path, model)
    assert loaded.model == "tiny" and loaded.meta == {"task": "rotten_tomatoes"}
    assert loaded.sparsity == masks_sparsity(masks)
    assert list(loaded.masks) == list(masks) and all(torch.equal(loaded.masks[n], masks[n]) for n in masks)
    bits = prunable_count(model)
    assert bits / 8 <= path.stat().st_size <= bits / 8 + 4096


def test_a_corrupt_or_foreign_mask_file_is_refused(tmp_path):
    path = save_masks(tmp_path / "m.fcmask", magnitude_masks(_tiny(), 0.4), "tiny")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "bad.fcmask").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt"):
        load_masks(tmp_path / "bad.fcmask")
    (tmp_path / "other.fcmask").write_bytes(b"not a mask")
    with pytest.raises(ValueError, match="not a flatcompress mask file"):
        load_masks(tmp_path / "other.fcmask")


def test_a_mask_for_another_shape_names_the_tensor(tmp_path):
    path = save_masks(tmp_path / "m.fcmask", magnitude_masks(_tiny(), 0.4), "tiny")
    other = load_model("tiny", get_task("rotten_tomatoes"), num_layers=1)
    with pytest.raises(ValueError, match="bert.encoder.layer.1.attention.self.query.weight.*does not have"):
        load_masks(path, other)
    wider = meta_model("minilm-l6")
    with pytest.raises(ValueError, match=r"'bert.encoder.layer.0.attention.self.query.weight' is \(64, 64\) in the "
                                         r"mask and \(384, 384\) in the model"):
        load_masks(path, wider)


# --- training under masks, rewinding, IMP ----------------------------------------------------------------------

@pytest.mark.parametrize("optimizer, kwargs", [("adamw", {}), ("sam", {"rho": 0.05}), ("sam", {"rho": 0.05, "adaptive": True})])
def test_pruned_weights_stay_exactly_zero_through_training(smoke_config, optimizer, kwargs):
    masks = magnitude_masks(_tiny(), 0.6)
    config = smoke_config(optimizer=optimizer, optimizer_kwargs=kwargs, weight_decay=0.01, l1=1e-4)
    model = finetune(config, masks, results_dir=None, progress=False).model
    params = dict(model.named_parameters())
    assert all(torch.count_nonzero(params[n][~m]) == 0 for n, m in masks.items())
    assert all(torch.count_nonzero(params[n][m]) == m.sum() for n, m in masks.items())


def test_rewinding_restores_the_pretrained_weights_exactly(smoke_config, tmp_path):
    config = smoke_config()
    trained = finetune(config, results_dir=tmp_path, progress=False, save_checkpoint=True)
    trained_state = trained.load_model().state_dict()
    head = {n: trained_state[n].clone() for n in head_names(trained.model)}
    masks = magnitude_masks(trained.model, 0.5)
    start = starting_model(config, masks, StartingPoint("head of round 0", head)).state_dict()
    pretrained = load_model("tiny", get_task("rotten_tomatoes")).state_dict()
    for name, value in start.items():
        if name in head:
            assert torch.equal(value, trained_state[name]), name  # Chen et al.: the head is not rewound
        elif name in masks:
            assert torch.equal(value, pretrained[name] * masks[name]), name
        else:
            assert torch.equal(value, pretrained[name]), name
    assert not torch.equal(trained_state["bert.encoder.layer.0.output.dense.bias"],
                           pretrained["bert.encoder.layer.0.output.dense.bias"])  # training did move it


def test_a_starting_point_with_foreign_tensors_is_refused(smoke_config):
    with pytest.raises(ValueError, match="tensors the model lacks"):
        starting_model(smoke_config(), start_from=StartingPoint("x", {"nope.weight": torch.zeros(1)}))


def test_imp_prunes_on_schedule_and_round_zero_is_the_full_run(smoke_config, tmp_path):
    config = smoke_config(optimizer="sam", optimizer_kwargs={"rho": 0.05})
    record = imp(config, (0, 0.3, 0.6), results_dir=tmp_path, progress=False)
    full = finetune(config, results_dir=tmp_path, progress=False)
    assert full.cached and record["rows"][0]["record"] == str(full.path.relative_to(tmp_path))
    total = record["n_prunable"]
    assert [round(r["sparsity"] * total) for r in record["rows"]] == [0, round(0.3 * total), round(0.6 * total)]
    masks = [load_masks(tmp_path / r["mask"]).masks for r in record["rows"][1:]]
    assert all(not (masks[1][n] & ~masks[0][n]).any() for n in masks[0])  # nested
    for row, mask in zip(record["rows"][1:], masks):
        run = read_record(tmp_path / row["record"])
        assert run["masks"]["fingerprint"] and run["start"].startswith("head of ")
        assert run["masks"]["sparsity"] == row["sparsity"] == masks_sparsity(mask)
    std = imp(config, (0, 0.3, 0.6), rewind=False, results_dir=tmp_path, progress=False)
    assert read_record(tmp_path / std["rows"][1]["record"])["start"].startswith("weights of ")
    assert std["rows"][0]["record"] == record["rows"][0]["record"]
    assert imp(config, (0, 0.3, 0.6), results_dir=tmp_path, progress=False, compute=False)["key"] == record["key"]


@pytest.mark.parametrize("schedule", [(0.2, 0.4), (0, 0.4, 0.4), (0, 0.5, 1.0), (0,)])
def test_bad_schedules_are_refused(schedule):
    with pytest.raises(ValueError):
        check_schedule(schedule)


def test_interrupted_imp_resumes_to_the_same_masks_and_metrics(smoke_config, tmp_path, monkeypatch):
    config = smoke_config(optimizer="sam", optimizer_kwargs={"rho": 0.05}, epochs=2)
    schedule = (0, 0.2, 0.4, 0.6)
    reference = imp(config, schedule, results_dir=tmp_path / "ref", progress=False)

    import flatcompress.training as ft

    real_save, calls = ft._save_partial, {"n": 0}

    def killed_in_round_two(*args, **kwargs):  # after round 2's first epoch is saved
        real_save(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(ft, "_save_partial", killed_in_round_two)
    with pytest.raises(KeyboardInterrupt):
        imp(config, schedule, results_dir=tmp_path / "run", progress=False)
    assert len(list((tmp_path / "run").rglob("*.partial.pt"))) == 1 and not list((tmp_path / "run" / "imp").glob("*/*.json"))
    monkeypatch.setattr(ft, "_save_partial", real_save)
    resumed = imp(config, schedule, results_dir=tmp_path / "run", progress=False)
    keep = ("round", "target_sparsity", "sparsity", "score", "metrics", "best_epoch", "record", "mask")
    assert [{k: r[k] for k in keep} for r in resumed["rows"]] == [{k: r[k] for k in keep} for r in reference["rows"]]
    for row in reference["rows"][1:]:
        assert (tmp_path / "run" / row["mask"]).read_bytes() == (tmp_path / "ref" / row["mask"]).read_bytes()
    last = reference["rows"][-1]["record"].replace(".json", ".safetensors")
    from safetensors.torch import load_file

    ref_weights, run_weights = load_file(tmp_path / "ref" / last), load_file(tmp_path / "run" / last)
    assert all(torch.equal(ref_weights[n], run_weights[n]) for n in ref_weights)


# --- one-shot pruning, L1 --------------------------------------------------------------------------------------

def test_one_shot_sweep_prunes_exactly_and_starts_at_the_unpruned_score(smoke_config, tmp_path):
    run = finetune(smoke_config(), results_dir=tmp_path, progress=False, save_checkpoint=True)
    record = one_shot_sweep(run, (0.5, 0, 0.25), results_dir=tmp_path)
    assert [r["target_sparsity"] for r in record["rows"]] == [0, 0.25, 0.5]
    assert [r["sparsity"] for r in record["rows"]] == pytest.approx([0, 0.25, 0.5], abs=1e-6)
    assert record["rows"][0]["score"] == record["unpruned_score"] == run.score
    for row in record["rows"]:  # the count the health gate reads is the count of distinct stored predictions
        block = row["predictions"][record["task"]["main_split"]]
        assert row["predicted_classes"] == len(set(decode_array(block["predictions"]).tolist()))
    assert one_shot_sweep(run, (0.5, 0, 0.25), results_dir=tmp_path, compute=False)["key"] == record["key"]


def test_l1_penalty_shrinks_the_prunable_weights(smoke_config):
    plain = finetune(smoke_config(lr=1e-2), results_dir=None, progress=False).model
    l1 = finetune(smoke_config(lr=1e-2, l1=1e-3), results_dir=None, progress=False).model
    norm = lambda m: sum(float(p.detach().abs().sum()) for n, p in m.named_parameters() if n in prunable_names(m))  # noqa: E731
    assert norm(l1) < norm(plain)
    with pytest.raises(ValueError, match="l1 must be >= 0"):
        smoke_config(l1=-1.0)


def test_the_l1_field_keeps_existing_record_keys():
    """A field added at its default leaves the keys of committed records unchanged."""
    from pathlib import Path

    from flatcompress import get_profile

    paths = sorted(Path(__file__).resolve().parent.parent.glob("results/cpu/finetune/sst2/minilm-l6-adamw-seed0-*.json"))
    # the plain run: IMP rounds key their masks, and the QAT run its `qat`
    records = [r for r in map(read_record, paths) if not r.get("masks") and not r["config"].get("qat")]
    assert records, "the committed cpu records include SST-2's AdamW seed 0"
    record = records[0]
    digest = record["data"]["fingerprint"]["digest"]  # the examples' fingerprint is part of the key
    config = FinetuneConfig(**{**record["config"]})
    assert config_key(config.result_fields(digest)) == record["key"]
    assert config_key(get_profile("cpu").config("sst2").result_fields(digest)) == record["key"]


# --- command line ----------------------------------------------------------------------------------------------

def test_cli_imp_and_oneshot(tmp_path, capsys):
    from flatcompress.cli import main

    base = ["--task", "rotten_tomatoes", "--profile", "smoke", "--results-dir", str(tmp_path), "--quiet"]
    assert main(["imp", *base, "--schedule", "0", "0.5", "0.4"]) == 2
    assert "rises strictly" in capsys.readouterr().err and not list(tmp_path.rglob("*.json"))  # refused before work
    assert main(["oneshot", *base, "--sparsities", "0.5", "1.0"]) == 2
    assert "sparsity must be in [0, 1)" in capsys.readouterr().err and not list(tmp_path.rglob("*.json"))
    assert main(["imp", *base, "--schedule", "0", "0.5", "--no-rewind"]) == 0
    out = capsys.readouterr().out
    assert "std-seed0" in out and len(list((tmp_path / "imp").rglob("*.fcmask"))) == 1
    assert main(["oneshot", *base, "--sparsities", "0", "0.5"]) == 0
    assert "0.5000" in capsys.readouterr().out


# --- the chapters' view ----------------------------------------------------------------------------------------

def test_chapter_tickets_carry_their_origin_into_the_records(tmp_path):
    from flatcompress.book.chapter import Chapter
    from flatcompress.errors import MissingRecordError

    reader = Chapter.open("lottery-tickets", "cpu", False, ["rte"], [0], tmp_path)
    with pytest.raises(MissingRecordError, match="flatcompress reproduce --profile cpu --chapters lottery-tickets "
                                                 "--tasks rte --seeds 0"):
        reader.imp("rte", "sam", 0)
    ch = Chapter.open("lottery-tickets", "smoke", True, ["rotten_tomatoes"], [0], tmp_path)
    ticket = ch.ticket("rotten_tomatoes", "sam", 0, 0.6)
    assert ticket.origin == {"kind": "imp", "task": "rotten_tomatoes", "optimizer": "sam", "seed": 0, "sparsity": 0.6}
    removed, total = _removed(ticket.masks), sum(m.numel() for m in ticket.masks.values())
    assert removed == round(0.6 * total)  # exactly round(s N) weights, as magnitude_masks promises
    with pytest.raises(ValueError, match="not a pruned round"):
        ch.ticket("rotten_tomatoes", "sam", 0, 0.4)
    control = ch.random_ticket("rotten_tomatoes", 0.6)
    assert control.origin["kind"] == "random" and _removed(control.masks) == _removed(ticket.masks)
    run = ch.finetune("rotten_tomatoes", "adamw", 0, ticket=ticket)
    assert run.record["masks"]["origin"] == ticket.origin
    assert ch.finetune("rotten_tomatoes", "adamw", 0, ticket=ticket).path == run.path  # read back, not retrained


def test_a_rounds_weights_come_back_by_training_the_chain_again(tmp_path, smoke_config, capsys):
    from flatcompress.data import run_inputs
    from flatcompress.pruning.imp import imp, round_result
    from flatcompress.training import evaluate_splits

    config = smoke_config(optimizer="sam", optimizer_kwargs={"rho": 0.05})
    record = imp(config, (0.0, 0.5), results_dir=tmp_path, progress=False)
    for weights in tmp_path.rglob("*.safetensors"):
        weights.unlink()  # a fresh clone: records and masks are committed, weights are not
    capsys.readouterr()
    result = round_result(record, 1, tmp_path, progress=True)
    assert result.path == tmp_path / record["rows"][1]["record"]
    assert capsys.readouterr().out.count("sam seed 0 epoch 2/2: train loss") == 2  # both rounds, trained in view
    inputs = run_inputs(config)
    metrics, _ = evaluate_splits(result.load_model(), inputs.eval, config.task)
    assert metrics[inputs.data.main_split][inputs.data.task.main_metric] == record["rows"][1]["score"]
    with pytest.raises(ValueError, match="round 2 is not in the record's 2 rounds"):
        round_result(record, 2, tmp_path)

