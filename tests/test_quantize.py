"""Int8 dynamic quantization: every back-end, sizes, save/load, bad input, and the Table 8 record."""

from __future__ import annotations

import sys
import warnings

import pytest
import torch
from conftest import random_batch, tiny_bert

from flatcompress.predictions import decode_array
from flatcompress.quantization.quantize import (BACKENDS, BackendUnavailableError, latency, load_quantized, quantize,
                                                save_quantized, serialized_bytes)

SETTINGS = [(b, e) for b in BACKENDS for e in (False, True)]


@pytest.fixture(scope="module")
def tiny():
    """A small BERT with a vocabulary large enough that its embeddings matter, and a padded batch."""
    model = tiny_bert(vocab_size=3000, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=256)
    with torch.no_grad():
        model.classifier.weight.mul_(20)  # spread the logits so argmax is a meaningful comparison
    batch = random_batch(3000, rows=64, length=24, padded_rows=slice(None, None, 2), pad_from=12)  # half padded
    with torch.no_grad():
        logits = model(**batch).logits
    return model, batch, logits


@pytest.mark.parametrize("backend,embeddings", SETTINGS)
def test_every_backend_agrees_with_fp32_and_shrinks_the_model(tiny, backend, embeddings):
    model, batch, logits = tiny
    before = {k: v.clone() for k, v in model.state_dict().items()}
    quantized = quantize(model, backend, embeddings, batch)
    with torch.no_grad():
        out = quantized(**batch).logits
    agree = (out.argmax(-1) == logits.argmax(-1)).float().mean().item()
    assert agree >= 0.9, f"{backend}: argmax agrees on {agree:.0%} of the batch"
    assert (out - logits).abs().max() < 0.1 * logits.abs().max()
    assert serialized_bytes(quantized) < serialized_bytes(model)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the fp32 model is untouched


@pytest.mark.parametrize("backend", BACKENDS)
def test_quantizing_the_embeddings_shrinks_the_model_further(tiny, backend):
    model, batch, _ = tiny
    linear_only, with_embeddings = quantize(model, backend, False, batch), quantize(model, backend, True, batch)
    # the word embeddings are 3000 x 64 floats: int8 saves about 3/4 of their 768 kB
    assert serialized_bytes(linear_only) - serialized_bytes(with_embeddings) > 0.6 * 3000 * 64 * 4


@pytest.mark.parametrize("backend,embeddings", SETTINGS)
def test_save_and_load_round_trip_with_identical_outputs(tiny, tmp_path, backend, embeddings):
    model, batch, _ = tiny
    quantized = quantize(model, backend, embeddings, batch)
    save_quantized(quantized, tmp_path / "model.fcq")
    loaded = load_quantized(tmp_path / "model.fcq")
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, quantized(**batch).logits)
    assert loaded.quantization == {"backend": backend, "embeddings": embeddings}


class _RunsCode:
    """A pickle that would run code when loaded: it writes a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_a_crafted_pickle_is_refused_without_running_its_code(tmp_path):
    marker = tmp_path / "code-ran"
    torch.save({"format": "flatcompress-quantized-1", "backend": "torch-ao", "payload": _RunsCode(marker)},
               tmp_path / "evil.fcq")
    with pytest.raises(ValueError, match="never unpickled"):
        load_quantized(tmp_path / "evil.fcq")
    assert not marker.exists()


def test_a_saved_quantized_model_holds_only_tensors_and_plain_values(tiny, tmp_path):
    save_quantized(quantize(tiny[0], "torch-ao", True, tiny[1]), tmp_path / "model.fcq")
    payload = torch.load(tmp_path / "model.fcq", weights_only=True)  # raises on anything else
    assert payload["architecture"] == type(tiny[0]).__name__ and isinstance(payload["config"], dict)


def test_a_file_that_is_not_a_quantized_model_is_refused(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a flatcompress quantized model"):
        load_quantized(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="that flatcompress.quantization.quantize.quantize returned"):
        save_quantized(torch.nn.Linear(2, 2), tmp_path / "x")


def test_an_unknown_backend_is_an_error_listing_the_valid_ones(tiny):
    with pytest.raises(ValueError, match="valid back-ends: torch-ao, torchao, onnxruntime"):
        quantize(tiny[0], "tensorrt")


@pytest.mark.parametrize("module,backend,advice", [("torch.ao.quantization", "torch-ao", "'torchao' or 'onnxruntime'"),
                                                   ("torchao.quantization", "torchao", "'torch-ao' or 'onnxruntime'"),
                                                   ("onnxruntime.quantization", "onnxruntime", "'torch-ao' or 'torchao'")])
def test_a_missing_backend_names_the_others(tiny, monkeypatch, module, backend, advice):
    monkeypatch.setitem(sys.modules, module, None)  # what an environment without it looks like to `import`
    with pytest.raises(BackendUnavailableError, match=advice):
        quantize(tiny[0], backend)


def test_deprecation_warnings_stay_inside(tiny):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quantize(tiny[0], "torch-ao", True)
    assert not caught, [str(w.message)[:80] for w in caught]


def test_latency_is_a_positive_median_and_checks_its_arguments(tiny):
    assert 0 < latency(tiny[0], batch_size=2, length=8, repeats=3, warmup=1) < 10
    with pytest.raises(ValueError, match="batch_size, length, repeats"):
        latency(tiny[0], batch_size=0)


def test_quantization_record_scores_fp32_and_each_setting(smoke_config, tmp_path):
    from flatcompress.errors import MissingRecordError
    from flatcompress.quantization.quantize_records import measure_quantization
    from flatcompress.training import finetune

    run = finetune(smoke_config(), results_dir=tmp_path, progress=False, save_checkpoint=True)
    settings = ["torch-ao", "onnxruntime+emb"]
    with pytest.raises(MissingRecordError):
        measure_quantization(run, settings, results_dir=tmp_path, compute=False)
    record = measure_quantization(run, settings, results_dir=tmp_path)
    assert record["fp32_score"] == pytest.approx(run.score)  # the same model, scored again on the CPU
    assert [r["setting"] for r in record["rows"]] == settings
    assert [r["embeddings"] for r in record["rows"]] == [False, True]
    assert all(r["bytes"] < record["fp32_bytes"] for r in record["rows"])
    fp32 = decode_array(record["fp32_predictions"][run.record["task"]["main_split"]]["predictions"])
    assert record["provenance"]["device"] == "cpu" and record["fp32_predicted_classes"] == len(set(fp32.tolist()))
    again = measure_quantization(run, settings, results_dir=tmp_path, compute=False)
    assert again["rows"] == record["rows"]
    with pytest.raises(ValueError, match="optionally followed by '\\+emb'"):
        measure_quantization(run, ["torch-ao+int4"], results_dir=tmp_path)
