"""`FinetuneConfig`: every setting of one fine-tuning run, validated before any work starts."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from flatcompress.data.loading import SOURCES
from flatcompress.models import get_model_spec
from flatcompress.tasks import get_task

__all__ = ["FinetuneConfig", "check_sparsity"]

# Fields that change where data is read from or how a run is displayed, not its result: left out of the cache key.
# Which examples a run saw enters the key as their fingerprint (`run_key_fields`), not as where they were read.
NON_RESULT_FIELDS = ("data_dir", "profile")
# Fields added after records were committed: left out of the key at their default, so those records keep their keys.
ADDED_FIELDS = {"l1": 0.0, "holdout": 0, "precision": None, "qat": False}


def check_sparsity(sparsity: float) -> float:
    """A sparsity is a fraction of weights removed, in [0, 1): 1 would remove every weight."""
    if not 0.0 <= float(sparsity) < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    return float(sparsity)


@dataclass(frozen=True)
class FinetuneConfig:
    """One fine-tuning run (paper §3.3, A.4): AdamW (or SAM), linear decay to zero, no warm-up.

    `seed` drives the head's initialization, the data order and dropout; `data_seed` fixes
    which examples a subset holds, so seeds of one setting train on the same data.
    """

    task: str
    model: str = "minilm-l6"
    optimizer: str = "adamw"
    optimizer_kwargs: dict[str, Any] = field(default_factory=dict)
    lr: float = 2e-5
    epochs: int = 3
    batch_size: int = 32
    micro_batch_size: int | None = None  # gradient accumulation: split each batch into micro-batches
    max_length: int = 128
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    weight_decay: float = 0.0  # the paper sets Adam's weight decay to 0 (§3.3)
    adam_eps: float = 1e-8
    grad_clip: float | None = 1.0  # BERT-Tickets' max_grad_norm
    num_layers: int | None = None  # keep only the first k encoder layers
    l1: float = 0.0  # A.7's control: lambda * sum |w| over the prunable weights added to the training loss
    holdout: int = 0  # > 0: evaluate on this many held-out *training* examples instead of the dev set (tuning)
    precision: str | None = None  # bf16 | fp16 | fp32; None: the device's (flatcompress.device.pick_precision)
    qat: bool = False  # quantization-aware training, Q8BERT's int8 recipe (flatcompress.quantization.qat); in fp32
    seed: int = 0
    data_seed: int = 0
    source: str = "auto"
    data_dir: str | None = None
    profile: str | None = None

    def __post_init__(self) -> None:
        task = get_task(self.task)
        object.__setattr__(self, "task", task.name)
        get_model_spec(self.model)
        from flatcompress.optim import OPTIMIZERS

        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; valid optimizers: {', '.join(OPTIMIZERS)}")
        if self.source not in SOURCES:
            raise ValueError(f"unknown data source {self.source!r}; valid sources: {', '.join(SOURCES)}")
        checks = [
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}"),
            (self.micro_batch_size is None or 1 <= self.micro_batch_size <= self.batch_size,
             f"micro_batch_size must be in [1, batch_size], got {self.micro_batch_size}"),
            (self.max_length >= 8, f"max_length must be at least 8, got {self.max_length}"),
            (self.max_train_examples is None or self.max_train_examples >= 1,
             f"max_train_examples must be at least 1, got {self.max_train_examples}"),
            (self.max_eval_examples is None or self.max_eval_examples >= 1,
             f"max_eval_examples must be at least 1, got {self.max_eval_examples}"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}"),
            (self.adam_eps >= 0, f"adam_eps must be >= 0, got {self.adam_eps}"),
            (self.grad_clip is None or self.grad_clip > 0, f"grad_clip must be > 0 or None, got {self.grad_clip}"),
            (self.num_layers is None or self.num_layers >= 1, f"num_layers must be at least 1, got {self.num_layers}"),
            (self.l1 >= 0, f"l1 must be >= 0, got {self.l1}"),
            (self.holdout >= 0, f"holdout must be >= 0, got {self.holdout}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        OPTIMIZERS[self.optimizer].validate(self.optimizer_kwargs)
        from flatcompress.device import PRECISIONS

        if self.precision is not None and self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; valid precisions: {', '.join(PRECISIONS)} "
                             "(or None for the device's)")
        if self.qat and self.precision not in (None, "fp32"):
            raise ValueError(f"quantization-aware training simulates int8 arithmetic in fp32; precision must be fp32 "
                             f"or None with qat=True, got {self.precision!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def stem(self, seed: int | None = None) -> str:
        """`<model>-<optimizer>-seed<seed>`: how the file names of this run's records begin, and of what is measured
        or distilled from it (`seed`: that one's own, default the run's)."""
        return f"{self.model}-{self.optimizer}-seed{self.seed if seed is None else seed}"

    @classmethod
    def from_record(cls, config: dict[str, Any]) -> FinetuneConfig:
        """The typed config of a record's `config` dict (`to_dict`'s output; fields added since take their
        defaults), validated like a new one."""
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = set(config) - valid
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)} in a record's config; valid settings: "
                             f"{', '.join(sorted(valid))}")
        return cls(**config)

    def result_fields(self, data: str | None = None) -> dict[str, Any]:
        """The fields that determine the result: the cache key is a hash of these.

        `data` is the fingerprint digest of the examples the run uses (`flatcompress.data.fingerprint`): with it,
        the data enter the key by content and `source` leaves it (identical examples from the hub or a glue_data
        directory are one run). Without it, the fields of records written before fingerprints existed.
        """
        fields = {k: v for k, v in self.to_dict().items()
                  if k not in NON_RESULT_FIELDS and not (k in ADDED_FIELDS and v == ADDED_FIELDS[k])}
        if data is not None:
            fields.pop("source")
            fields["data"] = data
        return fields
