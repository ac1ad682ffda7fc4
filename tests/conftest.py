"""Shared fixtures. Tests never touch the network: the hub is forced offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`make test` runs `-n auto`) each worker keeps its chapter runs in a folder of its own below
    $FLATCOMPRESS_RESULTS_DIR: two notebooks computing one run at once would race for its record and checkpoints. The
    kernels nbval starts inherit the variable; notebooks on one worker still share their runs."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and os.environ.get("FLATCOMPRESS_RESULTS_DIR"):
        os.environ["FLATCOMPRESS_RESULTS_DIR"] = str(Path(os.environ["FLATCOMPRESS_RESULTS_DIR"]) / worker)


def _glue_dir() -> Path | None:
    for candidate in (os.environ.get("FLATCOMPRESS_GLUE_DIR"), REPO.parent / "shared" / "data" / "glue"):
        if candidate and (Path(candidate) / "RTE" / "train.tsv").is_file():
            return Path(candidate)
    return None


@pytest.fixture
def glue_dir() -> Path:
    """The real GLUE files (../shared/data/glue or $FLATCOMPRESS_GLUE_DIR); tests skip when they are absent."""
    path = _glue_dir()
    if path is None:
        pytest.skip("real GLUE files not found: set FLATCOMPRESS_GLUE_DIR to a classic glue_data/ directory")
    return path


@pytest.fixture
def smoke_config():
    """A seconds-long run: the tiny random BERT on 32 bundled Rotten Tomatoes examples."""
    from flatcompress import get_profile

    def make(**overrides):
        return get_profile("smoke").config("rotten_tomatoes", **overrides)

    return make


def tiny_bert(vocab_size: int, hidden_size: int, num_hidden_layers: int, num_attention_heads: int,
              intermediate_size: int, num_labels: int = 3):
    """A small random BERT classifier (seed 0, eval mode): the shared stand-in for BERT-base in unit tests."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=num_hidden_layers,
                        num_attention_heads=num_attention_heads, intermediate_size=intermediate_size,
                        num_labels=num_labels)
    return BertForSequenceClassification(config).eval()


def random_batch(vocab_size: int, rows: int, length: int, padded_rows: slice, pad_from: int):
    """Random token ids (seed 1) with `padded_rows` padded from position `pad_from` on."""
    import torch

    ids = torch.randint(1, vocab_size, (rows, length), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[padded_rows, pad_from:] = 0
    return {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
