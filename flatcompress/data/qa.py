r"""Extractive question answering (SQuAD v1.1): windows over long contexts, answer spans as token positions, and
the standard post-processing from start and end logits back to answer text.

**Windows.** A question and its context are one input, `[CLS] question [SEP] context [SEP]`, at most `max_length`
tokens. A context too long for one input is cut into windows that overlap by `doc_stride` tokens, so every answer
lies whole inside at least one window. The paper's setting is BERT-Tickets' `--max_seq_length 384 --doc_stride 128`;
shorter inputs keep the same proportion, $\text{stride} = \min(128, \lfloor L / 3 \rfloor)$.

**Training targets.** A window holding the (first) gold answer whole is trained to point at its first and last
tokens; a window that does not is trained to point at `[CLS]` (position 0), as in BERT's SQuAD code.

**Answers.** Each window scores a span $(s, e)$ by $\text{start}_s + \text{end}_e$. The best span of an example is
the highest-scoring one over its windows among the `n_best` (20) highest start and end logits of each window, with
$s \le e$, both inside the context, and $e - s + 1 \le$ `max_answer_length` (30) tokens; its text is cut from the
context by the tokens' character offsets. An example with no valid span answers "".
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from flatcompress.data.examples import QAExample

__all__ = ["doc_stride", "encode_qa", "best_answers", "N_BEST", "MAX_ANSWER_LENGTH"]

N_BEST = 20
MAX_ANSWER_LENGTH = 30


def doc_stride(max_length: int) -> int:
    """The overlap of consecutive windows: BERT-Tickets' 128 at length 384, the same third at shorter lengths.

    >>> doc_stride(384), doc_stride(64)
    (128, 21)
    """
    return min(128, max_length // 3)


def encode_qa(examples: Sequence[QAExample], tokenizer: Any, max_length: int, train: bool) -> list[dict]:
    """Token ids of every window of every example, with the (first) answer's token positions (`start_positions`,
    `end_positions`; 0 and 0 when the window misses it), so a loss is defined on every split (ε-sharpness reads the
    dev loss). `train=False` adds what turns logits back into text: `example` (the example's index), `offsets`
    (each token's character span in the context, None outside it), `context` and `answers` (the gold answers)."""
    if max_length < 16:
        raise ValueError(f"max_length must be at least 16 for question answering, got {max_length}")
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"question answering needs a fast tokenizer (character offsets); {type(tokenizer).__name__} "
                         "is not one")
    questions = [e.question.lstrip() for e in examples]  # leading spaces would waste tokens (and break RoBERTa's)
    try:
        enc = tokenizer(questions, [e.context for e in examples], truncation="only_second", max_length=max_length,
                        stride=doc_stride(max_length), return_overflowing_tokens=True, return_offsets_mapping=True)
    except Exception as exc:  # the tokenizer refuses a question that leaves no room for a window of context
        raise ValueError(f"a question is too long for max_length {max_length} with doc stride "
                         f"{doc_stride(max_length)} ({exc}); raise max_length") from exc
    features = []
    for i, example_index in enumerate(enc["overflow_to_sample_mapping"]):
        example, sequence = examples[example_index], enc.sequence_ids(i)
        feature = {k: enc[k][i] for k in ("input_ids", "token_type_ids") if k in enc}
        offsets = [span if part == 1 else None for span, part in zip(enc["offset_mapping"][i], sequence)]
        feature["start_positions"], feature["end_positions"] = _answer_tokens(example, offsets)
        if not train:
            feature.update(example=example_index, offsets=offsets, context=example.context, answers=example.answers)
        features.append(feature)
    return features


def _answer_tokens(example: QAExample, offsets: Sequence[tuple[int, int] | None]) -> tuple[int, int]:
    """The first and last token of the example's first answer in this window, or (0, 0) when it is not all here."""
    start_char = example.answer_starts[0]
    end_char = start_char + len(example.answers[0])
    context = [i for i, span in enumerate(offsets) if span is not None]
    if not context or offsets[context[0]][0] > start_char or offsets[context[-1]][1] < end_char:
        return 0, 0
    start = next(i for i in context if offsets[i][1] > start_char)  # the token the answer's first character is in
    end = next(i for i in reversed(context) if offsets[i][0] < end_char)  # ... and its last character
    return start, end


def best_answers(features: Sequence[dict], logits: Sequence[np.ndarray], n_best: int = N_BEST,
                 max_answer_length: int = MAX_ANSWER_LENGTH) -> tuple[list[str], list[tuple[str, ...]]]:
    """Each example's predicted answer text and its gold answers, in example order, from every window's
    `(length, 2)` start and end logits (see the module docstring)."""
    n_examples = max(f["example"] for f in features) + 1
    best: list[tuple[float, str]] = [(-np.inf, "")] * n_examples
    golds: list[tuple[str, ...]] = [()] * n_examples
    for feature, window in zip(features, logits):
        start_logits, end_logits = window[:, 0], window[:, 1]
        offsets, index = feature["offsets"], feature["example"]
        golds[index] = feature["answers"]
        starts = np.argsort(start_logits)[::-1][:n_best]
        ends = np.argsort(end_logits)[::-1][:n_best]
        for s in starts:
            for e in ends:
                if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                    continue
                score = float(start_logits[s] + end_logits[e])  # a span's score: start_s + end_e
                if score > best[index][0]:
                    best[index] = (score, feature["context"][offsets[s][0]:offsets[e][1]])
    return [text for _, text in best], golds
