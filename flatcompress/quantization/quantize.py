"""Int8 post-training dynamic quantization (paper §2.3, §3.4.5, Table 8), with the back-ends people have.

Dynamic quantization maps each weight matrix $W$ to int8 once, with one scale per tensor,
$s_W = \\max|W| / 127.5$ (PyTorch's symmetric int8) and $\\hat W = \\mathrm{round}(W / s_W)$, and quantizes
each activation $x$ on the fly with its own range; the matrix product runs in integer arithmetic and is
rescaled, $y \\approx s_W s_x (\\hat W \\hat x)$.
No data and no retraining are needed. Rounding moves every weight by up to $s_W / 2$: a perturbation
of the kind the paper expects a flat minimum to tolerate.

Back-ends (`quantize(model, backend)`):

- `"torch-ao"`: `torch.ao.quantization.quantize_dynamic` on every `nn.Linear`, the paper's own method
  ("standard PyTorch", the recipe its footnote cites). PyTorch deprecates it in favour of torchao; its
  warnings are kept out of notebooks, and a torch without it gets an error naming the other back-ends.
- `"torchao"`: torchao's `Int8DynamicActivationInt8WeightConfig` on the same layers (the maintained
  successor). On CPUs without its fast int8 kernels it is slower than fp32; the benchmark says by how much.
- `"onnxruntime"`: ONNX export, then ONNX Runtime's `quantize_dynamic` on the encoder's MatMul weights:
  the usual CPU deployment path.

`embeddings=True` also stores the embedding table(s) as int8, weight-only (in MiniLM-L6 the word
embeddings are half of the parameters): the word embeddings for the torch back-ends, every constant
Gather (word, position and token-type tables) for ONNX Runtime.

Every quantized model runs on the CPU and is an `nn.Module` whose output has `.logits`, so
`flatcompress.training.evaluate` scores it like any model. `save_quantized`/`load_quantized` round-trip
it with identical outputs; `serialized_bytes` and `latency` measure it.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import torch

from flatcompress.data.encoding import TARGETS
from flatcompress.models import ARCHITECTURES, output_logits

__all__ = ["BACKENDS", "BackendUnavailableError", "OnnxRuntimeModel", "quantize", "save_quantized", "load_quantized",
           "serialized_bytes", "latency", "size_and_speed"]

BACKENDS = ("torch-ao", "torchao", "onnxruntime")
_FORMAT = "flatcompress-quantized-1"


class BackendUnavailableError(RuntimeError):
    """The requested back-end is not installed (or no longer exists) in this environment."""


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep the quantization libraries' deprecation and tracer warnings, and ONNX Runtime's advice logged on
    the root logger, out of notebooks."""
    root = logging.getLogger()
    level = root.level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root.setLevel(logging.ERROR)
        try:
            yield
        finally:
            root.setLevel(level)


def check_backend(backend: str) -> str:
    """`backend` if it is one of `BACKENDS`, else a ValueError listing them."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown quantization back-end {backend!r}; valid back-ends: {', '.join(BACKENDS)}")
    return backend


def _word_embeddings(model: torch.nn.Module) -> str | None:
    """The qualified name of the model's input-embedding module, if it has one."""
    getter = getattr(model, "get_input_embeddings", None)
    embedding = getter() if getter is not None else None
    return next((name for name, module in model.named_modules() if module is embedding), None)


def quantize(model: torch.nn.Module, backend: str = "torch-ao", embeddings: bool = False,
             example: dict[str, torch.Tensor] | None = None) -> torch.nn.Module:
    """An int8 dynamically quantized copy of `model` on the CPU (`model` itself is left as it is).

    `example` (a batch of model inputs) fixes the input names of the ONNX export; by default a batch of
    token ids with an attention mask (and token types when the model has them).
    """
    check_backend(backend)
    from flatcompress.quantization.qat import is_qat

    if is_qat(model):  # its layers are not nn.Linear: dynamic quantization would silently leave them as they are
        raise ValueError("a model trained with quantization-aware training has its own integer model: "
                         "flatcompress.quantization.qat.convert_int8 (setting 'qat-int8')")
    fp32 = copy.deepcopy(model).float().cpu().eval()
    if backend == "onnxruntime":
        return OnnxRuntimeModel.from_torch(fp32, embeddings, example)
    if backend == "torch-ao":
        try:
            from torch.ao.quantization import (default_dynamic_qconfig, float_qparams_weight_only_qconfig,
                                               quantize_dynamic)
        except ImportError as exc:
            raise BackendUnavailableError(f"torch {torch.__version__} no longer has torch.ao.quantization."
                                          "quantize_dynamic; use backend='torchao' or 'onnxruntime'") from exc
        spec: dict[Any, Any] = {torch.nn.Linear: default_dynamic_qconfig}
        word = _word_embeddings(fp32) if embeddings else None
        if word is not None:
            spec[word] = float_qparams_weight_only_qconfig
        with _quiet():
            quantized = quantize_dynamic(fp32, spec, dtype=torch.qint8)
        quantized.quantization = {"backend": backend, "embeddings": embeddings}
        return quantized
    with _quiet():
        try:
            from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig, quantize_
        except ImportError as exc:
            raise BackendUnavailableError("torchao is not installed (pip install torchao); or use backend="
                                          "'torch-ao' or 'onnxruntime'") from exc
        quantize_(fp32, Int8DynamicActivationInt8WeightConfig())
        word = _word_embeddings(fp32) if embeddings else None
        if word is not None:
            quantize_(fp32, Int8WeightOnlyConfig(), filter_fn=lambda module, name: name == word)
    fp32.quantization = {"backend": backend, "embeddings": embeddings}
    return fp32


def _random_inputs(model: torch.nn.Module, batch_size: int, length: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A batch of random token ids without padding (plus token types when the model has them)."""
    config = getattr(model, "config", None)
    ids = torch.randint(1, getattr(config, "vocab_size", 100), (batch_size, length),
                        generator=torch.Generator().manual_seed(seed))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if getattr(config, "type_vocab_size", 0) > 1:
        inputs["token_type_ids"] = torch.zeros_like(ids)
    return inputs


class OnnxRuntimeModel(torch.nn.Module):
    """An ONNX Runtime session behind the `model(**batch).logits` interface of a Hugging Face model (a QA model's
    start and end logits stacked, as `models.output_logits` gives them)."""

    def __init__(self, onnx_bytes: bytes, input_names: list[str], config: Any = None, embeddings: bool = False,
                 int8: bool = True) -> None:
        super().__init__()
        try:
            import onnxruntime
        except ImportError as exc:
            raise BackendUnavailableError("onnxruntime is not installed (pip install onnxruntime); or use backend="
                                          "'torch-ao' or 'torchao'") from exc
        self.onnx_bytes, self.input_names, self.config, self.embeddings = onnx_bytes, input_names, config, embeddings
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # the same threads as the torch back-ends
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        self.quantization = {"backend": "onnxruntime", "embeddings": embeddings} if int8 else None

    @classmethod
    def from_torch(cls, model: torch.nn.Module, embeddings: bool = False,
                   example: dict[str, torch.Tensor] | None = None, int8: bool = True) -> "OnnxRuntimeModel":
        """Export `model` (fp32, CPU) to ONNX and quantize its MatMul weights (and constant Gathers) to int8;
        `int8=False` keeps the fp32 export (the baseline of a deployment comparison)."""
        try:
            from onnxruntime.quantization import QuantType, quantize_dynamic
        except ImportError as exc:
            raise BackendUnavailableError("onnxruntime is not installed (pip install onnxruntime onnx); or use "
                                          "backend='torch-ao' or 'torchao'") from exc
        inputs = {k: v for k, v in (example or _random_inputs(model, 2, 16)).items() if k not in TARGETS}
        names = list(inputs)
        axes = {n: {0: "batch", 1: "length"} for n in names} | {"logits": {0: "batch", 1: "length"}
                                                               if _is_qa(model) else {0: "batch"}}
        with tempfile.TemporaryDirectory() as tmp, _quiet():
            fp32_path, int8_path = Path(tmp, "model.onnx"), Path(tmp, "model.int8.onnx")
            wrapped = _LogitsOnly(model, names)
            torch.onnx.export(wrapped, tuple(inputs[n] for n in names), str(fp32_path), input_names=names,
                              output_names=["logits"], dynamic_axes=axes, opset_version=17, dynamo=False)
            if int8:
                quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8,
                                 op_types_to_quantize=["MatMul", "Gather"] if embeddings else ["MatMul"])
            onnx_bytes = (int8_path if int8 else fp32_path).read_bytes()
        return cls(onnx_bytes, names, getattr(model, "config", None), embeddings, int8)

    def forward(self, **inputs: torch.Tensor) -> SimpleNamespace:
        feed = {n: inputs[n].cpu().numpy() for n in self.input_names}
        (logits,) = self.session.run(["logits"], feed)
        return SimpleNamespace(logits=torch.from_numpy(logits))


class _LogitsOnly(torch.nn.Module):
    """Positional inputs in, logits out: the shape `torch.onnx.export` wants."""

    def __init__(self, model: torch.nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return output_logits(self.model(**dict(zip(self.names, args))))  # QA: start and end stacked, (B, L, 2)


def _is_qa(model: torch.nn.Module) -> bool:
    return hasattr(model, "qa_outputs")


def serialized_bytes(model: torch.nn.Module) -> int:
    """Bytes of the model as stored: the ONNX file for ONNX Runtime, else `torch.save` of the state dict."""
    if isinstance(model, OnnxRuntimeModel):
        return len(model.onnx_bytes)
    buffer = io.BytesIO()
    with _quiet():
        torch.save(model.state_dict(), buffer)
    return buffer.tell()


def save_quantized(model: torch.nn.Module, path: str | Path) -> None:
    """Write a model that `quantize` returned (any back-end) to one file; `load_quantized` reads it back.

    The file holds only tensors and plain values, so it loads with `torch.load(weights_only=True)`: the
    architecture's name (one of `flatcompress.models.ARCHITECTURES`), its config as a dict, and the int8 state dict (torch's
    quantized tensors and torchao's tensor subclasses, which safetensors cannot represent: their scales and
    zero points live inside them), or for ONNX Runtime the ONNX file's bytes.
    """
    settings = getattr(model, "quantization", None)
    if settings is None:
        raise ValueError("save_quantized takes a model that flatcompress.quantization.quantize.quantize returned")
    config = getattr(model, "config", None)
    payload: dict[str, Any] = {"format": _FORMAT, **settings, "config": config.to_dict() if config is not None else None}
    if isinstance(model, OnnxRuntimeModel):
        payload |= {"onnx": model.onnx_bytes, "input_names": list(model.input_names)}
    else:
        if type(model).__name__ not in ARCHITECTURES:
            raise ValueError(f"cannot save a quantized {type(model).__name__}; architectures: {', '.join(ARCHITECTURES)}")
        payload |= {"architecture": type(model).__name__, "state_dict": model.state_dict()}
    with _quiet():
        torch.save(payload, str(path))


def load_quantized(path: str | Path) -> torch.nn.Module:
    """The model `save_quantized` wrote to `path`, on the CPU in eval mode.

    Nothing in the file is unpickled beyond tensors and plain containers (`weights_only=True`): a file that holds
    other objects (code to run, a pickled class) is refused with a `ValueError` before anything is built.
    """
    import transformers

    try:
        with _quiet():
            payload = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError (or RuntimeError) for anything but tensors and containers
        raise ValueError(f"{path} is not a flatcompress quantized model: it holds objects other than tensors and "
                         f"plain values, which are never unpickled ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(f"{path} is not a flatcompress quantized model (written by save_quantized)")
    config = transformers.AutoConfig.for_model(**payload["config"]) if payload.get("config") else None
    if payload["backend"] == "onnxruntime":
        return OnnxRuntimeModel(payload["onnx"], payload["input_names"], config, payload["embeddings"])
    if payload.get("architecture") not in ARCHITECTURES:
        raise ValueError(f"{path} names architecture {payload.get('architecture')!r}; valid: {', '.join(ARCHITECTURES)}")
    skeleton = quantize(getattr(transformers, payload["architecture"])(config), payload["backend"], payload["embeddings"])
    with _quiet():
        skeleton.load_state_dict(payload["state_dict"], assign=True)
    return skeleton.eval()


@torch.no_grad()
def latency(model: torch.nn.Module, batch_size: int = 1, length: int = 128, repeats: int = 20, warmup: int = 3,
            seed: int = 0) -> float:
    """Median seconds of one forward pass on a batch of `batch_size` random sequences of `length` tokens
    (no padding), after `warmup` untimed passes; on the CPU with torch's current thread count."""
    if batch_size < 1 or length < 1 or repeats < 1 or warmup < 0:
        raise ValueError(f"need batch_size, length, repeats >= 1 and warmup >= 0, got {batch_size}, {length}, "
                         f"{repeats}, {warmup}")
    inputs = _random_inputs(model, batch_size, length, seed)
    if isinstance(model, OnnxRuntimeModel):
        inputs = {n: inputs[n] for n in model.input_names}
    model.eval()
    times = []
    with _quiet():
        for k in range(warmup + repeats):
            start = time.perf_counter()
            model(**inputs)
            if k >= warmup:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def size_and_speed(model: torch.nn.Module, repeats: int = 10, length: int = 128) -> list[dict[str, Any]]:
    """Serialized size and median latency (batch 1 and 32) of `model` in fp32 (torch, and ONNX Runtime) and
    int8 from every back-end, with and without the embeddings, each with its ratio to fp32 torch.

    Batch 32 is timed `max(3, repeats // 3)` times. All models run on the CPU with torch's thread count.
    """
    model = copy.deepcopy(model).float().cpu().eval()
    candidates = [("torch", False, False, model),
                  ("onnxruntime", False, False, OnnxRuntimeModel.from_torch(model, int8=False))]
    candidates += [(b, e, True, quantize(model, b, e)) for b in BACKENDS for e in (False, True)]
    rows = []
    for backend, embeddings, int8, candidate in candidates:
        rows.append({"backend": backend, "int8": int8, "embeddings": embeddings,
                     "bytes": serialized_bytes(candidate), "batch1_s": latency(candidate, 1, length, repeats, 2),
                     "batch32_s": latency(candidate, 32, length, max(3, repeats // 3), 1)})
    base = rows[0]
    for row in rows:
        row |= {"smaller": base["bytes"] / row["bytes"], "faster_batch1": base["batch1_s"] / row["batch1_s"],
                "faster_batch32": base["batch32_s"] / row["batch32_s"]}
    return rows
