"""Accuracy of a fine-tuned model before and after int8 quantization, as a result record (Table 8, Fig. 5).

`measure_quantization(result, settings)` loads a finished `finetune` run's best model, scores it in
fp32 on the CPU, quantizes it once per setting (`"torch-ao"`, `"onnxruntime+emb"`, ...: a back-end of
`flatcompress.quantization.quantize`, `+emb` to quantize the embeddings too) and scores each int8 model on the same
validation data. The record, `<results_dir>/quantization/<task>/<run stem>-<key>.json`, holds every
metric and the serialized size of each model; an existing record is returned instead of measuring again.

A run trained with quantization-aware training (`qat=True`) has one setting of its own, `"qat-int8"`: its integer
model (`flatcompress.quantization.qat.convert_int8`); its "fp32" scores are those of its fake-quantized forward.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import torch

from flatcompress.data import pad_collate, run_inputs
from flatcompress.provenance import provenance
from flatcompress.quantization.qat import convert_int8
from flatcompress.quantization.quantize import check_backend, quantize, serialized_bytes
from flatcompress.records import find_measurement, run_reference, write_record
from flatcompress.training import FinetuneResult, evaluate_splits, predicted_classes, prediction_blocks

__all__ = ["PAPER_SETTING", "QAT_SETTING", "parse_setting", "check_settings", "measure_quantization"]

PAPER_SETTING = "torch-ao"  # quantize_dynamic on nn.Linear, embeddings in fp32: the paper's recipe (§2.3)
QAT_SETTING = "qat-int8"  # the integer model of a run trained with quantization-aware training


def parse_setting(setting: str) -> tuple[str, bool]:
    """`"backend"` or `"backend+emb"` as (backend, quantize the embeddings too), or `"qat-int8"` (a QAT run's integer
    model, embeddings included); an unknown back-end is an error."""
    if setting == QAT_SETTING:
        return QAT_SETTING, True
    backend, plus, rest = setting.partition("+")
    if plus and rest != "emb":
        raise ValueError(f"a quantization setting is a back-end, optionally followed by '+emb'; got {setting!r}")
    return check_backend(backend), bool(plus)


def check_settings(settings: Sequence[str], qat: bool) -> list[str]:
    """The distinct settings, each valid, and `["qat-int8"]` exactly when the run trained with QAT (`qat`)."""
    labels = list(dict.fromkeys(settings))
    for setting in labels:
        parse_setting(setting)
    if qat != (labels == [QAT_SETTING]):
        raise ValueError(f"a run trained with quantization-aware training is measured with settings ['{QAT_SETTING}'] "
                         f"alone, and only such a run is; got {labels} for a run with qat={qat}")
    return labels


def measure_quantization(result: FinetuneResult, settings: Sequence[str] = (PAPER_SETTING,),
                         results_dir: str | Path | None = "results", compute: bool = True) -> dict[str, Any]:
    """fp32 and int8 metrics of `result`'s best model, one row per quantization setting (a `quantization` record).

    Everything runs on the CPU, where dynamic quantization runs. With `compute=False` the record is only
    looked up (`MissingRecordError` when it is absent).
    """
    labels = check_settings(settings, result.config.qat)  # every setting is checked before any work
    parsed = [parse_setting(s) for s in labels]
    config = result.config
    key, path, found = find_measurement(results_dir, "quantization", result.record,
                                        {"finetune_key": result.record["key"], "settings": labels}, compute)
    if found is not None:
        return found
    start = time.perf_counter()
    model = result.load_model("cpu").float().eval()  # dynamic int8 runs on the CPU
    inputs = run_inputs(config, max_train_examples=1)  # the evaluation splits are all it needs
    task = result.record["task"]
    cpu = torch.device("cpu")

    def scores(m: torch.nn.Module) -> tuple[dict[str, dict[str, float]], int | None, dict[str, Any]]:
        """Metrics per split, how many classes `m` predicts on the main split (1: a constant predictor, which
        cannot lose accuracy: the claim needs to know) and the per-example predictions."""
        out, predictions = evaluate_splits(m, inputs.eval, config.task, 2 * config.batch_size, cpu)
        return out, predicted_classes(predictions[task["main_split"]], config.task), prediction_blocks(inputs.data,
                                                                                                     predictions)

    fp32, classes, fp32_predictions = scores(model)
    example = pad_collate(inputs.main_eval[:2], inputs.pad_id)  # input names for ONNX
    rows = []
    for label, (backend, embeddings) in zip(labels, parsed):
        tick = time.perf_counter()
        quantized = convert_int8(model) if backend == QAT_SETTING else quantize(model, backend, embeddings, example)
        metrics, int8_classes, predictions = scores(quantized)
        rows.append({"setting": label, "backend": backend, "embeddings": embeddings,
                     "score": metrics[task["main_split"]][task["main_metric"]], "metrics": metrics,
                     "predicted_classes": int8_classes, "predictions": predictions,
                     "bytes": serialized_bytes(quantized), "seconds": time.perf_counter() - tick})
    record = {"kind": "quantization", "key": key, "settings": {"finetune_key": result.record["key"], "settings": labels},
              "config": result.record["config"], "finetune_record": run_reference(result.path, results_dir),
              "fp32_score": fp32[task["main_split"]][task["main_metric"]], "fp32_metrics": fp32,
              "fp32_predicted_classes": classes, "fp32_predictions": fp32_predictions,
              "fp32_bytes": serialized_bytes(model), "rows": rows, "wall_time_s": time.perf_counter() - start,
              "provenance": provenance(cpu)}
    if path is not None:
        write_record(path, record)
    return {**record, "path": str(path) if path else None}

