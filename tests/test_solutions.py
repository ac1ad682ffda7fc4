"""The worked solutions: every exercise of every chapter has one, with its code, and that code runs at the smoke
tier in its chapter's namespace after the chapter's setup cells (as a reader runs it with compute=True)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parent.parent / "book"
CHAPTERS = ("train-flat", "pruning-without-retraining", "lottery-tickets", "mask-or-optimizer", "tickets-travel",
            "structured-pruning", "quantization")
SOLUTION = re.compile(r"^(`{3,4})\{admonition\} Solution to Exercise (\d+)\n(.*?)^\1$", re.M | re.S)
CODE = re.compile(r"^```python\n(.*?)^```$", re.M | re.S)


def _notebook(chapter: str) -> dict:
    return json.loads((BOOK / f"{chapter}.ipynb").read_text())


def _markdown(nb: dict) -> str:
    return "\n\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


def _exercises(nb: dict) -> list[int]:
    text = _markdown(nb)
    block = text[text.index("## Exercises"):].split("\n## ", 1)[0].split("````", 1)[0]
    return [int(n) for n in re.findall(r"^(\d+)\. \*\*", block, re.M)]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_exercise_has_a_worked_solution_with_code(chapter):
    nb = _notebook(chapter)
    solved = [(int(n), body) for _, n, body in SOLUTION.findall(_markdown(nb))]
    assert _exercises(nb) and [n for n, _ in solved] == _exercises(nb)
    hidden = [c for c in nb["cells"] if c["cell_type"] == "code" and "hide-cell" in c["metadata"].get("tags", [])]
    hidden_code = {int(n) for c in hidden for n in re.findall(r"^# Exercise (\d+)", "".join(c["source"]), re.M)}
    assert all(":class: dropdown" in body and (CODE.search(body) or n in hidden_code) for n, body in solved)


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory) -> Path:
    """One results folder for every chapter's solutions: the fine-tunes they share are trained once."""
    return tmp_path_factory.mktemp("smoke-results")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_worked_solutions_run_at_the_smoke_tier(chapter, smoke_results, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from IPython.core.inputtransformer2 import TransformerManager

    monkeypatch.chdir(BOOK)
    nb = _notebook(chapter)
    namespace: dict = {}
    transform = TransformerManager().transform_cell
    for cell in [c for c in nb["cells"] if c["cell_type"] == "code"]:
        source = "".join(cell["source"])
        exec(compile(transform(source), f"{chapter} setup", "exec"), namespace)
        if "parameters" in cell["metadata"].get("tags", []):
            namespace.update(profile="smoke", compute=True, results_dir=str(smoke_results))
        if "Chapter.open(" in source:
            break
    assert namespace["ch"].profile.name == "smoke" and namespace["ch"].compute
    for _, n, body in SOLUTION.findall(_markdown(nb)):
        for code in CODE.findall(body):
            exec(compile(code, f"{chapter}: solution to exercise {n}", "exec"), namespace)
        plt.close("all")
