import json
import time

import pytest
import torch

from flatcompress.cli import main
from flatcompress.errors import DataSourceError
from flatcompress.models import load_model, model_names
from flatcompress.tasks import get_task


def test_model_registry():
    assert model_names() == ["bert-base-uncased", "bert-large-uncased", "roberta-base", "minilm-l6", "tiny"]
    with pytest.raises(ValueError, match="valid models"):
        load_model("gpt2", get_task("rte"))


def test_tiny_encoder_is_fixed_and_head_follows_the_seed():
    torch.manual_seed(1)
    a = load_model("tiny", get_task("rte"))
    torch.manual_seed(2)
    b = load_model("tiny", get_task("rte"))
    assert torch.equal(a.bert.encoder.layer[0].attention.self.query.weight,
                       b.bert.encoder.layer[0].attention.self.query.weight)
    assert not torch.equal(a.classifier.weight, b.classifier.weight)


def test_minilm_loads_pretrained_and_truncates():
    model = load_model("minilm-l6", get_task("mnli"), num_layers=2)
    assert len(model.bert.encoder.layer) == 2 and model.classifier.out_features == 3
    full = load_model("minilm-l6", get_task("stsb"))
    assert len(full.bert.encoder.layer) == 6 and full.config.hidden_size == 384
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, full.bert.embeddings.word_embeddings.weight)


def test_hub_models_fail_fast_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(DataSourceError, match="offline models: minilm-l6, tiny"):
        load_model("bert-base-uncased", get_task("rte"))
    assert time.perf_counter() - start < 30


def test_cli_lists(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert all(t in out for t in ("mnli", "qqp", "stsb", "qnli", "mrpc", "rte", "sst2", "cola", "squad"))
    assert main(["models"]) == 0 and "minilm-l6" in capsys.readouterr().out
    assert main(["profiles"]) == 0 and "smoke" in capsys.readouterr().out


def test_cli_finetune_writes_a_record_and_reuses_it(tmp_path, capsys):
    args = ["finetune", "--task", "rotten_tomatoes", "--profile", "smoke", "--results-dir", str(tmp_path), "--quiet"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["cached"] is False and summary["task"] == "rotten_tomatoes"
    assert json.loads(open(summary["record"]).read())["score"] == summary["score"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["cached"] is True


@pytest.mark.slow
def test_pretrained_minilm_learns_rotten_tomatoes():
    """A real pretrained model on real data beats the majority class after two short epochs."""
    from flatcompress import finetune, get_profile

    config = get_profile("cpu").config("rotten_tomatoes", epochs=2, lr=1e-4, batch_size=16, max_train_examples=512,
                                       max_eval_examples=200, max_length=64)
    result = finetune(config, results_dir=None, progress=False)
    assert result.score > result.record["data"]["majority_rate"] + 0.1


def test_cli_sharpness_and_rho(tmp_path, capsys):
    base = ["--task", "rotten_tomatoes", "--profile", "smoke", "--results-dir", str(tmp_path), "--quiet"]
    assert main(["finetune", *base, "--rho", "0.1"]) == 2
    assert "--rho applies to --optimizer sam only" in capsys.readouterr().err
    assert main(["sharpness", *base, "--optimizer", "sam", "--sharpness-examples", "8"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["sharpness"]) == {"0.005", "0.001", "0.0005"}
    assert json.loads(open(out["finetune_record"]).read())["config"]["optimizer_kwargs"] == {"rho": 0.05}
