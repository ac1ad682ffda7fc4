"""flatcompress: a runnable reproduction of "Train Flat, Then Compress" (Na, Mehta, Strubell, Findings of EMNLP 2022).

The library is thin on purpose: tasks and data (`flatcompress.tasks`, `flatcompress.data`),
models (`flatcompress.models`), one fine-tuning loop (`flatcompress.training`), scale tiers
(`flatcompress.profiles`) and result records (`flatcompress.records`). The book's chapters
call it; they do not re-implement it.
"""

__version__ = "0.1.0"

import logging

# transformers imports torchao (the quantization back-end) whenever it is installed; on a CPU-only torch
# its import logs that its CUDA kernels do not load, and torch logs a deprecation note about its enums.
for _name in ("torchao", "torch.utils._pytree"):
    logging.getLogger(_name).setLevel(logging.ERROR)

from flatcompress.config import FinetuneConfig, check_sparsity
from flatcompress.training import FinetuneResult, evaluate, finetune
from flatcompress.profiles import PROFILES, get_profile
from flatcompress.tasks import TASKS, get_task

__all__ = ["FinetuneConfig", "FinetuneResult", "PROFILES", "TASKS", "check_sparsity", "evaluate", "finetune",
           "get_profile", "get_task", "__version__"]
