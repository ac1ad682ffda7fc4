"""A run's model inputs: the examples it trained and was evaluated on, its tokenizer, and the splits encoded at its
maximum length (each split encoded the first time it is read). One reader for training and for every measurement
of a fine-tuned model (one-shot pruning, quantization, sharpness, dropout replay, CoFi)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flatcompress.data.encoding import encode
from flatcompress.data.examples import TaskData
from flatcompress.data.loading import load_run_data
from flatcompress.data.qa import encode_qa
from flatcompress.models import load_tokenizer

if TYPE_CHECKING:
    from flatcompress.config import FinetuneConfig

__all__ = ["RunInputs", "run_inputs"]


@dataclass
class RunInputs:
    """`data` (the examples), `tokenizer`, and the encoded `train` and `eval` splits (token ids and labels; for QA
    one feature per context window)."""

    data: TaskData
    tokenizer: Any
    max_length: int

    @functools.cached_property
    def train(self) -> list[dict]:
        return self._encode(self.data.train, train=True)

    @functools.cached_property
    def eval(self) -> dict[str, list[dict]]:
        return {s: self._encode(v, train=False) for s, v in self.data.eval.items()}

    def _encode(self, examples: list, train: bool) -> list[dict]:
        """Classification and regression: one feature an example. QA: one a context window (`flatcompress.data.qa`)."""
        if self.data.task.kind == "qa":
            return encode_qa(examples, self.tokenizer, self.max_length, train)
        return encode(examples, self.tokenizer, self.max_length)

    @property
    def main_eval(self) -> list[dict]:
        """The encoded split that selects the best epoch (`TaskData.main_split`)."""
        return self.eval[self.data.main_split]

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id


def run_inputs(config: FinetuneConfig, max_train_examples: int | None | str = "config",
               max_eval_examples: int | None | str = "config") -> RunInputs:
    """The inputs of the run `config` describes; either size may be overridden (`"config"`: the run's own), e.g.
    `max_train_examples=1` for a measurement that reads only the evaluation splits."""
    return RunInputs(load_run_data(config, max_train_examples, max_eval_examples), load_tokenizer(config.model),
                     config.max_length)
