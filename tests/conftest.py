"""Shared fixtures. Tests never touch the network: the hub is forced offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent


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
