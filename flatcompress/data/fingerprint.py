"""Fingerprints of exactly the data a run used: the examples (after subsetting, in order) and the tokenizer.

A result record's cache key includes these, so a run on another copy of a task (another glue_data
directory, the hub's version, a corrected file, a different subset rule) hits the cache only when the
examples are identical, byte for byte in their text and exactly in their labels.

    fingerprint = SHA-256( JSON [[text_a, text_b, label], ...] )
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Sequence

__all__ = ["examples_fingerprint", "tokenizer_fingerprint", "data_fingerprint"]


def _sha256(payload: Any) -> str:
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def examples_fingerprint(examples: Sequence[Any]) -> str:
    """SHA-256 of the examples' texts and labels, in order (`Example` or `QAExample`)."""
    rows = []
    for e in examples:
        if hasattr(e, "text_a"):
            rows.append([e.text_a, e.text_b, e.label])
        else:  # QAExample
            rows.append([e.id, e.question, e.context, list(e.answers), list(e.answer_starts)])
    return _sha256(rows)


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """SHA-256 of what decides the token ids: the tokenizer's class, its vocabulary and its casing."""
    vocab = sorted(tokenizer.get_vocab().items())
    settings = {k: getattr(tokenizer, k, None) for k in ("do_lower_case", "model_max_length")}
    return _sha256({"class": type(tokenizer).__name__, "vocab": vocab, "settings": settings})


def data_fingerprint(data: Any, tokenizer: Any | None = None) -> dict[str, Any]:
    """`{"train", "eval": {split: ...}, "tokenizer", "digest"}` of a `TaskData`; `digest` covers all the others."""
    out: dict[str, Any] = {"train": examples_fingerprint(data.train),
                           "eval": {split: examples_fingerprint(v) for split, v in data.eval.items()},
                           "tokenizer": tokenizer_fingerprint(tokenizer) if tokenizer is not None else None}
    out["digest"] = _sha256(out)
    return out
