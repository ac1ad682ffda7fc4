"""For teachers: what each chapter teaches and what it costs to run (the "Using this book in a course" page).

`syllabus()` reads the chapter notebooks (the library code each one prints with `literalinclude`, how many exercises
it sets) and the cost ledger (`flatcompress.book.costs`: measured hours at the `cpu` tier, estimated GPU hours at the
`colab` tier), so the page never states a number by hand.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from flatcompress.book import costs
from flatcompress.book.reproduce import CHAPTERS, book_dir

__all__ = ["chapter_contents", "syllabus"]

_INCLUDE = re.compile(r"```\{literalinclude\}\s*\.\./(\S+)\.py\s*\n((?::[^\n]*\n)*)")


def chapter_contents(notebook: Path) -> dict[str, Any]:
    """The library objects a chapter prints (`flatcompress.flatness.sam.SAM`, ...), its number of exercises and how
    many of them have a worked solution."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    text = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown")
    code = []
    for match in _INCLUDE.finditer(text):
        module = match.group(1).replace("/", ".")
        target = re.search(r":pyobject:\s*(\S+)", match.group(2))
        code.append(f"{module}.{target.group(1)}" if target else module)
    exercises = text.split("## Exercises", 1)[1].split("## Worked solutions", 1)[0] if "## Exercises" in text else ""
    return {"code": code, "exercises": len(re.findall(r"^\d+\. ", exercises, flags=re.MULTILINE)),
            "solutions": len(set(re.findall(r"\{admonition\} Solution to Exercise (\d+)", text)))}


def syllabus(results_root: Path) -> list[dict[str, Any]]:
    """One row per chapter: what it reproduces, the library code on its page, its exercises and worked solutions,
    the wall hours its records took at the `cpu` tier (under `results_root`) and its estimated hours at the `colab`
    tier on a T4 and an A100."""
    measured = costs.chapter_minutes(Path(results_root) / "cpu")
    t4, a100 = costs.chapter_gpu_hours("colab", "T4"), costs.chapter_gpu_hours("colab", "A100")
    rows = []
    for name, chapter in CHAPTERS.items():
        contents = chapter_contents(book_dir() / chapter.notebook)
        rows.append({"chapter": name, "reproduces": chapter.reproduces, "code on the page": contents["code"],
                     "exercises": contents["exercises"], "worked solutions": contents["solutions"],
                     "cpu tier, measured hours": measured.get(name, 0.0) / 60,
                     "colab tier, T4 hours": t4[name], "colab tier, A100 hours": a100[name]})
    return rows
