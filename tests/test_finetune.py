"""The fine-tuning loop on the tiny model: seconds per run."""

import json

import pytest
import torch

from flatcompress import finetune
from flatcompress.errors import NonFiniteLossError, RecordExistsError
from flatcompress.masks import masks_sparsity
from flatcompress.models import load_model
from flatcompress.records import write_record
from flatcompress.tasks import get_task
from flatcompress.training import _make_closure


def _random_masks(sparsity=0.5, seed=0):
    model = load_model("tiny", get_task("rotten_tomatoes"))
    g = torch.Generator().manual_seed(seed)
    return {name: torch.rand(p.shape, generator=g) >= sparsity
            for name, p in model.named_parameters() if name.endswith("weight") and p.dim() == 2
            and "encoder" in name}


def test_run_writes_a_complete_record(smoke_config, tmp_path):
    result = finetune(smoke_config(), results_dir=tmp_path, progress=False)
    assert not result.cached and result.path.exists()
    record = json.loads(result.path.read_text())
    assert record["config"]["task"] == "rotten_tomatoes" and record["config"]["model"] == "tiny"
    scores = [h["eval"]["validation"]["accuracy"] for h in record["history"]]
    assert len(scores) == 2 and record["best_epoch"] == 1 + scores.index(max(scores))  # the first best epoch
    assert record["score"] == max(scores)
    assert record["history"][-1]["lr_end"] == pytest.approx(0.0)  # linear decay to zero
    prov = record["provenance"]
    assert set(prov) >= {"git_commit", "packages", "device", "device_name", "cpu", "created_at"}
    assert prov["packages"]["torch"].startswith("2.") and record["wall_time_s"] > 0
    assert record["data"]["n_train"] == 32 and 0.5 < record["data"]["majority_rate"] < 1


def test_same_seed_same_metrics_other_seed_differs(smoke_config):
    a = finetune(smoke_config(seed=1), results_dir=None, progress=False)
    b = finetune(smoke_config(seed=1), results_dir=None, progress=False)
    c = finetune(smoke_config(seed=2), results_dir=None, progress=False)
    untimed = lambda hist: [{k: v for k, v in h.items() if "seconds" not in k} for h in hist]  # noqa: E731
    assert untimed(a.record["history"]) == untimed(b.record["history"])
    assert all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()))
    assert a.record["history"][0]["train_loss"] != c.record["history"][0]["train_loss"]


def test_existing_record_is_returned_not_retrained(smoke_config, tmp_path, monkeypatch):
    first = finetune(smoke_config(), results_dir=tmp_path, progress=False)

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr("flatcompress.training.load_model", no_training)
    again = finetune(smoke_config(), results_dir=tmp_path, progress=False)
    assert again.cached and again.path == first.path and again.record == json.loads(first.path.read_text())
    with pytest.raises(AssertionError, match="trained again"):  # another config is another run
        finetune(smoke_config(lr=2e-3), results_dir=tmp_path, progress=False)


def test_records_are_never_silently_overwritten(smoke_config, tmp_path):
    first = finetune(smoke_config(), results_dir=tmp_path, progress=False)
    with pytest.raises(RecordExistsError, match="overwrite"):
        write_record(first.path, {"kind": "other"})
    assert json.loads(first.path.read_text())["kind"] == "finetune"
    again = finetune(smoke_config(), results_dir=tmp_path, progress=False, overwrite=True)
    assert not again.cached and json.loads(first.path.read_text())["provenance"]["created_at"]
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_masked_weights_stay_exactly_zero(smoke_config, weight_decay):
    masks = _random_masks(0.5)
    assert masks_sparsity(masks) == pytest.approx(0.5, abs=0.01)
    result = finetune(smoke_config(weight_decay=weight_decay), masks=masks, results_dir=None, progress=False)
    params = dict(result.model.named_parameters())
    for name, mask in masks.items():
        assert torch.count_nonzero(params[name][~mask]) == 0, name
        assert torch.count_nonzero(params[name][mask]) == mask.sum()  # the kept weights did train
    pretrained = dict(load_model("tiny", get_task("rotten_tomatoes")).named_parameters())
    name = next(iter(masks))
    assert not torch.equal(params[name][masks[name]], pretrained[name][masks[name]])


def test_a_full_run_that_did_not_train_says_so_when_it_ends(smoke_config, tmp_path):
    import warnings

    from flatcompress.errors import UntrainedModelWarning
    from flatcompress.stats import record_health

    config = smoke_config(lr=1e-9, epochs=1)  # a random tiny BERT that cannot move: at its floor
    said = r"rotten_tomatoes adamw seed 0 DID NOT TRAIN: .*\(record .*\.json\)"
    with pytest.warns(UntrainedModelWarning, match=said):
        result = finetune(config, results_dir=tmp_path, progress=False)
    assert not record_health(result.record).trained
    with warnings.catch_warnings():
        warnings.simplefilter("error", UntrainedModelWarning)
        finetune(config, results_dir=tmp_path, progress=False)  # read from its record: it was said when it ended
        # a pruned model's collapse is a result, not a failure to train
        finetune(config, masks=_random_masks(0.5), results_dir=None, progress=False)


def test_masks_are_part_of_the_cache_key(smoke_config, tmp_path):
    plain = finetune(smoke_config(), results_dir=tmp_path, progress=False)
    masked = finetune(smoke_config(), masks=_random_masks(0.3), results_dir=tmp_path, progress=False)
    assert plain.path != masked.path and masked.record["masks"]["sparsity"] == pytest.approx(0.3, abs=0.01)


def test_interrupted_run_resumes_identically(smoke_config, tmp_path, monkeypatch):
    config = smoke_config(epochs=3)
    reference = finetune(config, results_dir=tmp_path / "ref", progress=False)

    import flatcompress.training as ft

    real_evaluate, calls = ft.evaluate_splits, {"n": 0}

    def crash_in_epoch_two(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(ft, "evaluate_splits", crash_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        finetune(config, results_dir=tmp_path / "run", progress=False)
    assert len(list((tmp_path / "run").rglob("*.partial.pt"))) == 1
    assert not list((tmp_path / "run").rglob("*.json"))
    monkeypatch.setattr(ft, "evaluate_splits", real_evaluate)
    resumed = finetune(config, results_dir=tmp_path / "run", progress=False)
    strip = lambda hist: [{k: v for k, v in h.items() if "seconds" not in k} for h in hist]  # noqa: E731
    assert strip(resumed.record["history"]) == strip(reference.record["history"])
    assert resumed.record["score"] == reference.record["score"]
    assert resumed.record["predictions"] == reference.record["predictions"]
    assert all(torch.equal(a, b) for a, b in zip(resumed.model.state_dict().values(),
                                                 reference.model.state_dict().values()))
    assert not list((tmp_path / "run").rglob("*.partial.pt"))


def test_nan_loss_stops_with_the_step_number(smoke_config, monkeypatch):
    real = load_model

    def nan_model(*args, **kwargs):
        model = real(*args, **kwargs)
        model.register_forward_hook(lambda m, i, out: out.__class__(loss=out.loss * float("nan"), logits=out.logits))
        return model

    monkeypatch.setattr("flatcompress.training.load_model", nan_model)
    with pytest.raises(NonFiniteLossError, match="at step 1"):
        finetune(smoke_config(), results_dir=None, progress=False)


def test_gradient_accumulation_matches_one_batch(smoke_config):
    from flatcompress.data import encode, load_task, pad_collate
    from flatcompress.models import load_tokenizer

    task = get_task("rotten_tomatoes")
    batch = pad_collate(encode(load_task(task, max_train_examples=8).train, load_tokenizer("tiny"), 32))
    grads = []
    for micro in (None, 3):
        torch.manual_seed(0)  # the same head both times
        model = load_model("tiny", task).eval()  # no dropout: both ways see the same function
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        loss = _make_closure(model, opt, batch, smoke_config(micro_batch_size=micro, grad_clip=None), None,
                             torch.device("cpu"), 1)()
        grads.append((loss, [p.grad.clone() for p in model.parameters()]))
    assert grads[0][0].item() == pytest.approx(grads[1][0].item(), rel=1e-5)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads[0][1], grads[1][1]))


def test_regression_task_trains_with_mse(glue_dir):
    from flatcompress import get_profile

    result = finetune(get_profile("smoke").config("stsb", data_dir=str(glue_dir)), results_dir=None, progress=False)
    assert set(result.metrics["validation"]) == {"pearson", "spearman"}
    assert result.model.config.problem_type == "regression"


def test_checkpoint_reloads_the_best_model(smoke_config, tmp_path):
    first = finetune(smoke_config(), results_dir=tmp_path, progress=False, save_checkpoint=True)
    cached = finetune(smoke_config(), results_dir=tmp_path, progress=False)
    reloaded = cached.load_model()
    assert all(torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), first.model.state_dict().values()))


def test_checkpoint_is_regenerated_for_an_existing_record(smoke_config, tmp_path):
    first = finetune(smoke_config(), results_dir=tmp_path, progress=False)
    record_text = first.path.read_text()
    again = finetune(smoke_config(), results_dir=tmp_path, progress=False, save_checkpoint=True)
    assert first.path.with_suffix(".safetensors").exists() and first.path.read_text() == record_text
    assert all(torch.equal(a, b) for a, b in zip(again.model.state_dict().values(), first.model.state_dict().values()))
