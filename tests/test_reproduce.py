"""`flatcompress reproduce`: argument checks before anything runs, a full smoke batch, and a resumed one."""

from __future__ import annotations

import dataclasses
import json

import pytest

from flatcompress.book.reproduce import parse_parameters, reproduce
from flatcompress.cli import main


def test_parameters_parse_as_python_literals_or_strings():
    assert parse_parameters(["full_space_task=rte", "x=3", "y=[1, 2]"]) == {"full_space_task": "rte", "x": 3,
                                                                           "y": [1, 2]}
    with pytest.raises(ValueError, match="key=value"):
        parse_parameters(["novalue"])


@pytest.mark.parametrize("kwargs, message", [
    ({"chapters": ["lottery"]}, "unknown chapter"),
    ({"parameters": {"learning_rate": 1}}, "no parameter"),
    ({"parameters": {"profile": "cpu"}}, "own options"),
    ({"tasks": ["imdb"]}, "unknown task"),
    ({"seeds": [-2]}, "non-negative"),
])
def test_bad_arguments_fail_before_anything_runs(tmp_path, kwargs, message):
    with pytest.raises((ValueError, KeyError), match=message):
        reproduce("smoke", results_dir=tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


def test_cli_rejects_an_unknown_profile(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "--profile", "laptop"])
    assert exc.value.code == 2 and "laptop" in capsys.readouterr().err


def test_smoke_batch_runs_a_chapter_then_skips_it(tmp_path, capsys):
    from flatcompress.sweep import describe
    from flatcompress.sweep.jobs import Job

    # the plan's row for the same notebook: no record until it finished, then its stamp and the minutes it took
    job = Job("chapter-pruning-without-retraining", "pruning-without-retraining", "smoke", "reproduce",
              {"tasks": ["rotten_tomatoes"]}, results_dir=str(tmp_path))
    assert describe([job])[0]["record"] is None
    # one chapter, a quick one: nbval executes every chapter at the smoke tier already (the book once, not twice)
    assert main(["reproduce", "--profile", "smoke", "--chapters", "pruning-without-retraining",
                 "--tasks", "rotten_tomatoes",
                 "--results-dir", str(tmp_path), "--quiet"]) == 0
    first = capsys.readouterr().out
    notebook = tmp_path / "notebooks" / "pruning-without-retraining.ipynb"
    assert notebook.is_file() and "running at smoke" in first
    assert "one-shot change at" in first and "rotten_tomatoes" in first  # the summary table
    stamps = list((tmp_path / "chapters").glob("pruning-without-retraining-*.done.json"))
    assert len(stamps) == 1
    mtime = notebook.stat().st_mtime_ns

    assert main(["reproduce", "--profile", "smoke", "--chapters", "pruning-without-retraining",
                 "--tasks", "rotten_tomatoes",
                 "--results-dir", str(tmp_path), "--quiet"]) == 0
    second = capsys.readouterr().out
    assert "skipped" in second and "running" not in second
    assert notebook.stat().st_mtime_ns == mtime
    assert second.splitlines()[-1] == first.splitlines()[-1]  # same summary
    row = describe([job])[0]
    assert row["record"] == str(stamps[0].relative_to(tmp_path))
    assert row["minutes"] == json.loads(stamps[0].read_text())["wall_time_s"] / 60 > 0
    other_seed = dataclasses.replace(job, args={"tasks": ["rotten_tomatoes"], "seeds": [1]})
    assert describe([other_seed])[0]["record"] is None  # another run
    (tmp_path / json.loads(stamps[0].read_text())["records"][0]).unlink()
    assert describe([job])[0]["record"] is None  # a record it read is gone: run again, it computes


def test_a_chapters_printed_output_can_follow_the_run(tmp_path, monkeypatch, capsys):
    """A sweep's job log shows what the notebook prints (its runs' progress bars) while it runs."""
    import nbformat

    from flatcompress.book import reproduce as batch

    name = "quantization"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import json, pathlib, sys\n"
        "print('printed by the kernel'); print('a progress bar', file=sys.stderr)\n"
        "folder = pathlib.Path(results_dir) / 'chapters'; folder.mkdir(parents=True, exist_ok=True)\n"
        f"(folder / '{name}.json').write_text(json.dumps({{'summary': []}}))")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (tmp_path / "book").mkdir()
    nbformat.write(notebook, tmp_path / "book" / batch.CHAPTERS[name].notebook)
    monkeypatch.setattr(batch, "book_dir", lambda: tmp_path / "book")
    batch.reproduce("smoke", [name], seeds=[0], results_dir=tmp_path / "quiet", progress=False)
    quiet = capsys.readouterr()
    assert "printed by the kernel" not in quiet.out and "a progress bar" not in quiet.err
    batch.reproduce("smoke", [name], seeds=[0], results_dir=tmp_path / "logged", progress=False, log_outputs=True)
    logged = capsys.readouterr()
    assert "printed by the kernel" in logged.out and "a progress bar" in logged.err


def test_a_chapter_that_fails_says_which_cell_and_why(tmp_path):
    from flatcompress.book.reproduce import reproduce

    with pytest.raises(RuntimeError, match=r"chapter 'train-flat' stopped in cell \d+: ValueError: full_space_task "
                                           r"must be one of the tier's sharpness tasks") as raised:
        reproduce("smoke", ["train-flat"], parameters={"full_space_task": "mrpc"}, results_dir=tmp_path, progress=False)
    assert "notebooks/train-flat.ipynb" in str(raised.value) and "Traceback" not in str(raised.value)


def test_the_table_of_contents_the_batch_the_claims_and_the_browser_check_name_the_same_chapters():
    import yaml

    from flatcompress.book.chapter import checkout_root
    from flatcompress.book.claims import CLAIMS
    from flatcompress.book.reproduce import CHAPTERS
    from test_book_browser import PAGES

    root = checkout_root()
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    pages = [toc["root"]] + [entry["file"] for entry in toc["chapters"]]
    assert [f"{page}.html" for page in pages] == PAGES  # the browser opens every page of the book, in its order
    chapters = [page.removeprefix("book/") for page in pages if page.removeprefix("book/") in CHAPTERS]
    assert chapters == list(CHAPTERS)  # `reproduce` runs every chapter notebook, in the book's order
    others = {page.removeprefix("book/") for page in pages} - set(CHAPTERS)
    assert others == {"intro", "scorecard", "teaching", "chapter-template"}
    assert {claim.chapter for claim in CLAIMS} <= set(CHAPTERS)  # every claim is judged in a chapter of the book


def test_the_course_page_reads_each_chapters_code_and_exercises_and_the_cost_ledger(tmp_path):
    import json

    from flatcompress.book import costs
    from flatcompress.book.course import chapter_contents, syllabus
    from flatcompress.book.reproduce import CHAPTERS

    text = ("## Method\n\n```{literalinclude} ../flatcompress/flatness/sam.py\n:language: python\n:pyobject: SAM\n```\n"
            "```{literalinclude} ../flatcompress/pruning/imp.py\n```\n"
            "## Exercises\n\n1. **One.** a\n   b\n2. c\n10. d\n"
            "## Worked solutions\n\n````{admonition} Solution to Exercise 2\n1. not an exercise either\n````\n")
    notebook = tmp_path / "chapter.ipynb"
    notebook.write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": [text]},
                                              {"cell_type": "code", "source": ["1. not an exercise"]}]}))
    assert chapter_contents(notebook) == {"code": ["flatcompress.flatness.sam.SAM", "flatcompress.pruning.imp"],
                                          "exercises": 3, "solutions": 1}
    rows = {row["chapter"]: row for row in syllabus(tmp_path)}  # no cpu records there: nothing measured
    assert list(rows) == list(CHAPTERS)
    assert "flatcompress.flatness.sam.SAM" in rows["train-flat"]["code on the page"]
    assert rows["quantization"]["colab tier, A100 hours"] == costs.chapter_gpu_hours("colab", "A100")["quantization"]
    assert all(row["cpu tier, measured hours"] == 0 and row["exercises"] >= 3 for row in rows.values())
    assert all(row["worked solutions"] == row["exercises"] for name, row in rows.items() if name != "train-flat")
