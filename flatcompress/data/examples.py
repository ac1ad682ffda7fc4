"""Plain example types shared by every data source."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Sequence, Union

from flatcompress.tasks import Task

__all__ = ["Example", "QAExample", "TaskData", "majority_rate"]


@dataclass(frozen=True)
class Example:
    """A single- or pair-sentence example with an integer class or a float score."""

    text_a: str
    text_b: str | None
    label: Union[int, float]


@dataclass(frozen=True)
class QAExample:
    """An extractive QA example (SQuAD v1.1): the answers with their character offsets."""

    id: str
    question: str
    context: str
    answers: tuple[str, ...]
    answer_starts: tuple[int, ...]


@dataclass
class TaskData:
    """A task's training examples and its evaluation splits (the first split selects the best epoch)."""

    task: Task
    source: str
    train: list
    eval: dict[str, list]
    info: dict = field(default_factory=dict)
    main_split: str = ""  # the split that selects the best epoch: the task's first, or "heldout"

    def __post_init__(self) -> None:
        self.main_split = self.main_split or self.task.eval_splits[0]

    @property
    def main_eval(self) -> list:
        return self.eval[self.main_split]


def majority_rate(examples: Sequence[Example]) -> float:
    """Accuracy of always predicting the most frequent label: the floor a classifier must clear."""
    counts = collections.Counter(e.label for e in examples)
    return max(counts.values()) / len(examples) if examples else 0.0
