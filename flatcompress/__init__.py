"""flatcompress: a runnable reproduction of "Train Flat, Then Compress" (Na, Mehta, Strubell, Findings of EMNLP 2022).

The library is thin on purpose. At the top: tasks and data (`tasks`, `data/`), models (`models`), one
fine-tuning loop (`training`, `optim`, `device`, `masks`), scale tiers (`profiles`), result records (`records`,
`provenance`, `audit`) and their statistics (`stats`). One folder per chapter family:

- `flatness/`: SAM, SWA, ε-sharpness and its records, dropout replay, the 2-D toy, loss contours (Train flat);
- `pruning/`: global magnitude masks, mask files, IMP, one-shot curves (the unstructured-pruning chapters);
- `cofi/`: hard-concrete gates, structure shapes, the gated model, the CoFi run (Structured pruning);
- `quantization/`: int8 back-ends and the records of quantized models (Quantization);
- `book/`: what the chapters share: chapter runs, claims and verdicts, tables, the paper's numbers, costs,
  `reproduce`, the Colab setup;
- `sweep/`: every run of a tier as a plan, run locally, on Ray or on Slurm.

An algorithm module computes (`flatness.sharpness`, `quantization.quantize`); its `*_records` module (or the run
module: `pruning.imp`, `pruning.oneshot`, `cofi.run`) runs it on a fine-tuned model and writes the record. The
book's chapters call the library; they do not re-implement it.
"""

__version__ = "0.1.0"

import logging

# transformers imports torchao (the quantization back-end) whenever it is installed; on a CPU-only torch
# its import logs that its CUDA kernels do not load, and torch logs a deprecation note about its enums.
for _name in ("torchao", "torch.utils._pytree"):
    logging.getLogger(_name).setLevel(logging.ERROR)

import flatcompress.flatness.sam  # noqa: E402,F401 - registers the "sam" optimizer (flatcompress.optim)
import flatcompress.flatness.swa  # noqa: E402,F401 - registers "swa"
from flatcompress.config import FinetuneConfig, check_sparsity
from flatcompress.training import FinetuneResult, evaluate, finetune
from flatcompress.profiles import PROFILES, get_profile
from flatcompress.tasks import TASKS, get_task

__all__ = ["FinetuneConfig", "FinetuneResult", "PROFILES", "TASKS", "check_sparsity", "evaluate", "finetune",
           "get_profile", "get_task", "__version__"]
