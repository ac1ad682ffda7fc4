"""Where a chapter runs decides its defaults: unchanged off Colab; on Colab a GPU tier (or a warned cpu tier),
computing, with results on Drive; and the chapters run from an installed package, without a clone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import flatcompress
from flatcompress.book import colab, reproduce

BOOK = Path(__file__).resolve().parent.parent / "book"


def test_off_colab_nothing_changes(monkeypatch):
    monkeypatch.setenv("FLATCOMPRESS_PROFILE", "smoke")
    monkeypatch.delenv("FLATCOMPRESS_RESULTS_DIR", raising=False)
    assert colab.setup(colab=False) == {"profile": "smoke", "compute": False, "results_dir": None}
    assert "FLATCOMPRESS_RESULTS_DIR" not in __import__("os").environ


def test_on_colab_without_a_gpu_the_cpu_tier_computes_with_a_warning(monkeypatch):
    monkeypatch.delenv("FLATCOMPRESS_RESULTS_DIR", raising=False)
    with pytest.warns(UserWarning) as warned:
        defaults = colab.setup(colab=True, cuda=False, drive=False)
    text = " ".join(str(w.message) for w in warned)
    assert "no GPU" in text and "deleted with this runtime" in text
    assert defaults == {"profile": "cpu", "compute": True, "results_dir": "/content/flatcompress-results/cpu"}
    import os

    assert os.environ["FLATCOMPRESS_RESULTS_DIR"] == "/content/flatcompress-results"


def test_on_colab_with_a_gpu_results_go_to_drive(monkeypatch, tmp_path):
    monkeypatch.setattr(colab, "DRIVE", tmp_path)
    (tmp_path / "MyDrive").mkdir()
    monkeypatch.delenv("FLATCOMPRESS_RESULTS_DIR", raising=False)
    defaults = colab.setup(colab=True, cuda=True)
    assert defaults == {"profile": "colab", "compute": True,
                        "results_dir": str(tmp_path / "MyDrive" / "flatcompress-results" / "colab")}


def test_every_chapter_installs_this_version_and_takes_its_defaults_from_setup():
    command = colab.install_command()
    assert f"@v{flatcompress.__version__}\"" in command and "[hub,book,quantize,offline]" in command
    for name, chapter in reproduce.CHAPTERS.items():
        cells = [("".join(c["source"]), c.get("metadata", {}).get("tags", []))
                 for c in json.loads((BOOK / chapter.notebook).read_text())["cells"] if c["cell_type"] == "code"]
        first, parameters = cells[0][0], next(src for src, tags in cells if "parameters" in tags)
        assert f"!{command}" in first and "defaults = setup()" in first, name
        for key in ("profile", "compute", "results_dir"):
            assert f'{key} = defaults["{key}"]' in parameters, (name, key)


def test_without_a_checkout_the_chapters_come_from_the_release(monkeypatch, tmp_path):
    monkeypatch.setattr(reproduce, "checkout_root", lambda: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("FLATCOMPRESS_BOOK_URL", BOOK.as_uri() + "/")
    folder = reproduce.book_dir()
    assert folder == tmp_path / "flatcompress" / f"book-{flatcompress.__version__}"
    for chapter in reproduce.CHAPTERS.values():
        assert (folder / chapter.notebook).read_bytes() == (BOOK / chapter.notebook).read_bytes()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("FLATCOMPRESS_BOOK_URL", (tmp_path / "nowhere").as_uri() + "/")
    with pytest.raises(FileNotFoundError, match="could not be fetched .*clone the repository"):
        reproduce.book_dir()
