"""`flatcompress reproduce`: run the book's chapters in batch through papermill.

Each chapter is a notebook in `book/` with a papermill `parameters` cell (`profile`, `compute`,
`tasks`, `seeds`, `results_dir` and chapter-specific ones). `reproduce` checks every argument
before anything runs, executes the chapters with `compute=True` (the library skips every run whose
record exists, and an interrupted run resumes from its last epoch), writes the executed notebooks
to `<results>/<profile>/notebooks/`, stamps each finished chapter, and prints the chapters'
paper-vs-ours summaries. A chapter whose stamp and records all exist is skipped without starting a
kernel, so a second invocation of a finished batch does nothing.
"""

from __future__ import annotations

import ast
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from flatcompress.book.chapter import checkout_root, results_root
from flatcompress.profiles import Profile, get_profile
from flatcompress.records import config_key
from flatcompress.tasks import get_task

__all__ = ["CHAPTERS", "BookChapter", "book_dir", "finished", "parse_parameters", "reproduce"]


@dataclass(frozen=True)
class BookChapter:
    name: str
    notebook: str  # relative to book/
    reproduces: str


CHAPTERS: dict[str, BookChapter] = {c.name: c for c in [
    BookChapter("train-flat", "train-flat.ipynb", "SAM finds flatter minima (Table 3, Table 5 Full FT rows)"),
    BookChapter("pruning-without-retraining", "pruning-without-retraining.ipynb",
                "SAM models survive one-shot magnitude pruning longer (Fig. 7)"),
    BookChapter("lottery-tickets", "lottery-tickets.ipynb",
                "IMP with SAM finds better tickets (Figs. 1, 2, 9; Table 5 IMP and Std rows)"),
    BookChapter("mask-or-optimizer", "mask-or-optimizer.ipynb",
                "random vs Adam vs SAM masks under either optimizer (Table 6, Fig. 3); the L1 control (A.7)"),
    BookChapter("tickets-travel", "tickets-travel.ipynb", "SAM tickets transfer better across tasks (Fig. 4, 13)"),
    BookChapter("structured-pruning", "structured-pruning.ipynb",
                "a SAM teacher gives a better CoFi student at 95% sparsity (Table 2); pruned-model speed"),
    BookChapter("quantization", "quantization.ipynb",
                "SAM models lose less from int8 dynamic quantization (Table 8, Fig. 5); size and speed per back-end"),
]}

_RESERVED = {"profile", "compute", "tasks", "seeds", "results_dir"}


BOOK_URL = "https://raw.githubusercontent.com/flatcompress/flatcompress/v{version}/book/"


def book_dir() -> Path:
    """The checkout's `book/` folder; without a checkout (`pip install flatcompress`, Colab) the chapter notebooks of
    this version, downloaded once from the release tag (`$FLATCOMPRESS_BOOK_URL` overrides where from) into
    `~/.cache/flatcompress/book-<version>/`."""
    checkout = checkout_root()
    if checkout is not None:
        return checkout / "book"
    import os
    import urllib.request

    import flatcompress

    base = os.environ.get("FLATCOMPRESS_BOOK_URL") or BOOK_URL.format(version=flatcompress.__version__)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "flatcompress"
    folder = cache / f"book-{flatcompress.__version__}"
    folder.mkdir(parents=True, exist_ok=True)
    for chapter in CHAPTERS.values():
        target = folder / chapter.notebook
        if target.is_file():
            continue
        url = base.rstrip("/") + "/" + chapter.notebook
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                text = response.read()
            json.loads(text)  # a notebook, not an error page
        except (OSError, ValueError) as exc:
            raise FileNotFoundError(f"no flatcompress checkout here, and the chapter notebooks could not be fetched "
                                    f"from {url} ({exc}); clone the repository, or set FLATCOMPRESS_BOOK_URL to a "
                                    f"folder of them (file:///path/to/book/)") from None
        partial = target.with_suffix(".part")
        partial.write_bytes(text)
        partial.replace(target)
    return folder


def parse_parameters(items: Sequence[str]) -> dict[str, Any]:
    """`key=value` strings to a dict; values are Python literals (`3`, `0.1`, `[1, 2]`) or plain strings."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"-p expects key=value with a Python identifier as key, got {item!r}")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def _stamp_path(results_dir: Path, chapter: str, parameters: dict[str, Any]) -> Path:
    return results_dir / "chapters" / f"{chapter}-{config_key(parameters)[:12]}.done.json"


def _is_done(stamp: Path, results_dir: Path) -> bool:
    """The chapter finished with these parameters and every record it used is still there."""
    if not stamp.is_file():
        return False
    return all((results_dir / r).is_file() for r in json.loads(stamp.read_text())["records"])


def _out_root(tier: Profile, results_dir: str | Path | None) -> Path:
    return Path(results_dir) if results_dir is not None else results_root() / tier.name


def _settings(tier: Profile, tasks: Sequence[str] | None, seeds: Sequence[int] | None,
              extra: dict[str, Any]) -> dict[str, Any]:
    """A chapter run's parameters, less its results folder: what its stamp is keyed on."""
    return {"profile": tier.name, "compute": True, "tasks": [get_task(t).name for t in tasks] if tasks else None,
            "seeds": [int(s) for s in seeds] if seeds is not None else None, **extra}


def finished(profile: str, chapter: str, tasks: Sequence[str] | None = None, seeds: Sequence[int] | None = None,
             results_dir: str | Path | None = None) -> Path | None:
    """The stamp of `chapter`'s notebook run at `profile` with these tasks and seeds (and no other parameters), if
    it finished and every record it used is still there: a run that `reproduce` skips. Else None."""
    tier = get_profile(profile)
    out_root = _out_root(tier, results_dir)
    stamp = _stamp_path(out_root, chapter, _settings(tier, tasks, seeds, {}))
    return stamp if _is_done(stamp, out_root) else None


def reproduce(profile: str, chapters: Sequence[str] | None = None, tasks: Sequence[str] | None = None,
              seeds: Sequence[int] | None = None, parameters: dict[str, Any] | None = None,
              results_dir: str | Path | None = None, progress: bool = True,
              log_outputs: bool = False) -> list[dict[str, Any]]:
    """Run the chapters at `profile`; returns one summary row per chapter and paper-vs-ours line. `progress`: a bar
    over each notebook's cells; `log_outputs`: what the notebook prints (its runs' progress bars) also goes to this
    process's stdout and stderr as it comes (a sweep job's log)."""
    import papermill

    tier = get_profile(profile)
    names = list(chapters) if chapters else list(CHAPTERS)
    unknown = [c for c in names if c not in CHAPTERS]
    if unknown:
        raise ValueError(f"unknown chapter(s) {unknown}; chapters: {', '.join(CHAPTERS)}")
    if seeds is not None and any(int(s) < 0 for s in seeds):
        raise ValueError(f"seeds must be non-negative integers, got {list(seeds)}")
    extra = dict(parameters or {})
    clash = _RESERVED & set(extra)
    if clash:
        raise ValueError(f"set {sorted(clash)} with their own options (--profile, --tasks, --seeds), not -p")
    settings = _settings(tier, tasks, seeds, extra)  # an unknown task stops here
    folder = book_dir()
    for name in names:
        declared = set(papermill.inspect_notebook(str(folder / CHAPTERS[name].notebook)))
        bad = set(extra) - declared
        if bad:
            raise ValueError(f"chapter {name!r} has no parameter(s) {sorted(bad)}; its parameters: "
                             f"{', '.join(sorted(declared))}")
    out_root = _out_root(tier, results_dir)
    rows: list[dict[str, Any]] = []
    for name in names:
        params = {**settings, "results_dir": str(out_root.resolve())}
        stamp = _stamp_path(out_root, name, settings)
        if _is_done(stamp, out_root):
            print(f"[{name}] done before: skipped ({stamp})")
        else:
            output = out_root / "notebooks" / f"{name}.ipynb"
            output.parent.mkdir(parents=True, exist_ok=True)
            print(f"[{name}] running at {tier.name} -> {output}")
            start = time.perf_counter()
            try:
                papermill.execute_notebook(str(folder / CHAPTERS[name].notebook), str(output), parameters=params,
                                           cwd=str(folder), progress_bar=progress, kernel_name="python3",
                                           stdout_file=sys.stdout if log_outputs else None,
                                           stderr_file=sys.stderr if log_outputs else None)
            except papermill.PapermillExecutionError as exc:  # the cell's error, not papermill's whole traceback
                raise RuntimeError(f"chapter {name!r} stopped in cell {exc.exec_count}: {exc.ename}: {exc.evalue} "
                                   f"(the executed notebook, with the traceback: {output})") from None
            summary = json.loads((out_root / "chapters" / f"{name}.json").read_text())
            summary.update(parameters=settings, wall_time_s=time.perf_counter() - start,
                           notebook=str(output.relative_to(out_root)))
            stamp.write_text(json.dumps(summary, indent=1) + "\n")
        rows += [{"chapter": name, **row} for row in json.loads(stamp.read_text())["summary"]]
    return rows
