"""The chapter session: parameter checks, read-only mode, computed runs, and the summary for `reproduce`."""

from __future__ import annotations

import dataclasses
import json

import pytest

from flatcompress import get_profile
from flatcompress.book.chapter import Chapter, results_root
from flatcompress.errors import MissingRecordError


@pytest.mark.parametrize("kwargs, message", [
    ({"profile": "laptop"}, "unknown profile"),
    ({"tasks": ["imdb"]}, "unknown task"),
    ({"seeds": [-1]}, "non-negative"),
    ({"tasks": []}, "at least one task"),
])
def test_bad_parameters_fail_before_anything_runs(tmp_path, kwargs, message):
    with pytest.raises((ValueError, KeyError), match=message):
        Chapter.open("train-flat", results_dir=tmp_path, **kwargs)


def test_read_only_names_the_command_that_produces_a_missing_record(tmp_path):
    ch = Chapter.open("train-flat", "cpu", compute=False, tasks=["rte"], seeds=[0], results_dir=tmp_path)
    with pytest.raises(MissingRecordError, match="flatcompress reproduce --profile cpu --chapters train-flat "
                                                 "--tasks rte --seeds 0"):
        ch.finetune("rte", "sam", 0)
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written


def test_smoke_always_computes_and_then_reads(tmp_path):
    ch = Chapter.open("train-flat", "smoke", compute=False, tasks=["rotten_tomatoes"], results_dir=tmp_path)
    assert ch.compute  # the smoke tier takes seconds: nbval runs it without a record
    first = ch.finetune("rotten_tomatoes", "sam", 0)
    assert not first.cached and first.record["config"]["optimizer_kwargs"] == {"rho": 0.05}
    reader = Chapter.open("train-flat", "smoke", tasks=["rotten_tomatoes"], results_dir=tmp_path)
    again = reader.finetune("rotten_tomatoes", "sam", 0)
    assert again.cached and again.record["metrics"] == first.record["metrics"] and again.path == first.path
    summary = json.loads(ch.save_summary([{"what": "x", "ours": 1.0}]).read_text())
    assert summary["records"] == [str(first.path.relative_to(tmp_path))]  # relative: no machine paths


def test_results_root_prefers_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FLATCOMPRESS_RESULTS_DIR", str(tmp_path))
    assert results_root() == tmp_path
    monkeypatch.delenv("FLATCOMPRESS_RESULTS_DIR")
    from pathlib import Path
    repo = Path(__file__).resolve().parent.parent
    assert results_root(repo / "book") == repo / "results"


def test_measurements_are_read_without_weights_and_computed_only_when_missing(tmp_path):
    ch = Chapter.open("train-flat", "smoke", tasks=["rotten_tomatoes"], results_dir=tmp_path)
    result = ch.finetune("rotten_tomatoes", "adamw", 0)
    weights = result.path.with_suffix(".safetensors")
    assert weights.is_file()  # computed runs keep their weights for later measurements
    record = ch.dropout_replay("rotten_tomatoes", "adamw", 0)
    assert record["kind"] == "dropout_replay" and len(record["rows"]) == 16
    weights.unlink()  # e.g. a fresh clone: records are committed, weights are not
    again = ch.dropout_replay("rotten_tomatoes", "adamw", 0)
    assert again["rows"] == record["rows"] and not weights.exists()  # read, nothing retrained

    reader = Chapter.open("train-flat", "cpu", tasks=["rotten_tomatoes"], results_dir=tmp_path / "cpu")
    with pytest.raises(MissingRecordError, match="--tasks rotten_tomatoes --seeds 0"):
        reader.dropout_replay("rotten_tomatoes", "sam", 0)


def test_a_models_weights_come_back_by_training_again_and_score_as_recorded(tmp_path):
    ch = Chapter.open("train-flat", "smoke", tasks=["rotten_tomatoes"], results_dir=tmp_path)
    result = ch.finetune("rotten_tomatoes", "sam", 0)
    result.path.with_suffix(".safetensors").unlink()  # a fresh clone: records are committed, weights are not
    reader = dataclasses.replace(ch, compute=False)  # a reader at a tier that only reads
    with pytest.raises(MissingRecordError, match="not kept.*compute=True"):
        reader.model("rotten_tomatoes", "sam", 0)
    model = ch.model("rotten_tomatoes", "sam", 0)  # trained again (deterministic) and kept
    assert ch.finetune("rotten_tomatoes", "sam", 0, keep_weights=True).path == result.path
    assert ch.score(model, "rotten_tomatoes") == result.score  # the record's model, scored on the record's examples


def test_the_chapter_notebook_stops_on_a_missing_record_with_the_command(tmp_path):
    """What the book build does at the cpu tier when a record is missing (papermill stands in for the build)."""
    from pathlib import Path

    import papermill

    book = Path(__file__).resolve().parent.parent / "book"
    first = get_profile("cpu").tasks[0]  # the chapter reads its first task's first run first
    with pytest.raises(papermill.PapermillExecutionError, match="flatcompress reproduce --profile cpu --chapters "
                                                                 f"train-flat --tasks {first} --seeds 0"):
        papermill.execute_notebook(str(book / "train-flat.ipynb"), str(tmp_path / "out.ipynb"), cwd=str(book),
                                   parameters={"profile": "cpu", "results_dir": str(tmp_path / "empty")},
                                   progress_bar=False, kernel_name="python3")
    assert not (tmp_path / "empty").exists()  # nothing was trained or written


def test_train_flat_refuses_tasks_with_no_sharpness_task_before_any_work(tmp_path):
    from pathlib import Path

    import papermill

    from flatcompress.profiles import PROFILES

    tier = next(p for p in PROFILES.values() if p.sharpness_tasks and set(p.tasks) - set(p.sharpness_tasks))
    other = next(t for t in tier.tasks if t not in tier.sharpness_tasks)  # e.g. MRPC: trained, not measured
    book = Path(__file__).resolve().parent.parent / "book"
    with pytest.raises(papermill.PapermillExecutionError, match=rf"tasks \['{other}'\] include none of them"):
        papermill.execute_notebook(str(book / "train-flat.ipynb"), str(tmp_path / "out.ipynb"), cwd=str(book),
                                   parameters={"profile": tier.name, "tasks": [other],
                                               "results_dir": str(tmp_path / "empty")},
                                   progress_bar=False, kernel_name="python3")
    assert not (tmp_path / "empty").exists()


def test_lists_given_as_strings_are_split(tmp_path):
    """`papermill -p tasks "['rte', 'mrpc']"` and `-p seeds "0 1"` pass strings; they mean lists."""
    ch = Chapter.open("train-flat", "cpu", False, "['rte', 'mrpc']", "0 1", tmp_path)
    assert ch.tasks == ("rte", "mrpc") and ch.seeds == (0, 1)
    with pytest.raises(ValueError, match="unknown task 'rtee'"):
        Chapter.open("train-flat", "cpu", False, "rtee", None, tmp_path)
