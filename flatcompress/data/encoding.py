"""Tokenization once, padding per batch (dynamic padding: a batch is as long as its longest example)."""

from __future__ import annotations

from typing import Sequence

import torch

from flatcompress.data.examples import Example

__all__ = ["encode", "pad_collate", "TARGETS"]


def encode(examples: Sequence[Example], tokenizer, max_length: int) -> list[dict]:
    """Token ids (truncated to `max_length`, pairs joined with [SEP]) and the label of each example."""
    if max_length < 8:
        raise ValueError(f"max_length must be at least 8, got {max_length}")
    texts_a = [e.text_a for e in examples]
    texts_b = [e.text_b for e in examples] if examples and examples[0].text_b is not None else None
    enc = tokenizer(texts_a, texts_b, truncation=True, max_length=max_length)
    features = []
    for i, example in enumerate(examples):
        feature = {k: enc[k][i] for k in ("input_ids", "token_type_ids") if k in enc}
        feature["labels"] = example.label
        features.append(feature)
    return features


TARGETS = ("labels", "start_positions", "end_positions")  # what a batch is trained to predict (QA: the answer span)


def pad_collate(features: Sequence[dict], pad_token_id: int = 0) -> dict[str, torch.Tensor]:
    """Stack features into a batch, padding ids with `pad_token_id` and masking the padding out; the targets
    (`TARGETS`) a feature has come along, other keys (a QA window's offsets) stay behind."""
    length = max(len(f["input_ids"]) for f in features)
    batch: dict[str, torch.Tensor] = {}
    ids = torch.full((len(features), length), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(features), length), dtype=torch.long)
    for i, f in enumerate(features):
        n = len(f["input_ids"])
        ids[i, :n] = torch.tensor(f["input_ids"])
        mask[i, :n] = 1
    batch["input_ids"], batch["attention_mask"] = ids, mask
    if "token_type_ids" in features[0]:
        types = torch.zeros((len(features), length), dtype=torch.long)
        for i, f in enumerate(features):
            types[i, : len(f["token_type_ids"])] = torch.tensor(f["token_type_ids"])
        batch["token_type_ids"] = types
    for target in (t for t in TARGETS if t in features[0]):
        values = [f[target] for f in features]
        batch[target] = torch.tensor(values, dtype=torch.float if isinstance(values[0], float) else torch.long)
    return batch
