import json

import pytest

from flatcompress.errors import MissingRecordError, RecordExistsError
from flatcompress.records import config_key, iter_records, look_up, record_path, write_record


def test_key_is_order_independent_and_sensitive():
    assert config_key({"a": 1, "b": 2}) == config_key({"b": 2, "a": 1})
    assert config_key({"a": 1, "b": 2}) != config_key({"a": 1, "b": 3})


def test_write_is_atomic_and_exclusive(tmp_path):
    path = record_path(tmp_path, "finetune", "rte", "m-adamw-seed0", "ab" * 32)
    assert path.name == "m-adamw-seed0-abababababab.json"
    write_record(path, {"kind": "finetune", "config": {"task": "rte", "seed": 0}, "score": 0.5})
    with pytest.raises(RecordExistsError):
        write_record(path, {"kind": "finetune", "score": 0.9})
    assert json.loads(path.read_text())["score"] == 0.5
    write_record(path, {"kind": "finetune", "config": {"task": "rte", "seed": 0}, "score": 0.7}, overwrite=True)
    assert json.loads(path.read_text())["score"] == 0.7
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_look_up_finds_the_record_or_an_older_one_and_refuses_to_compute_when_told(tmp_path):
    new, old = tmp_path / "new.json", tmp_path / "old.json"
    assert look_up(new, True, "imp", [old]) is None  # nothing yet: compute
    with pytest.raises(MissingRecordError, match="no imp record .*new.json"):
        look_up(new, False, "imp", [old])
    with pytest.raises(MissingRecordError, match="needs a results_dir"):
        look_up(None, False, "cofi")
    write_record(old, {"kind": "imp", "score": 1})
    assert look_up(new, False, "imp", [old]) == {"kind": "imp", "score": 1, "schema": 1, "path": str(old)}
    write_record(new, {"kind": "imp", "score": 2})
    assert look_up(new, False, "imp", [old])["score"] == 2  # the current key first
    assert look_up(new, True, "imp", [old], overwrite=True) is None


def test_iter_records_filters_by_config(tmp_path):
    for seed in (0, 1):
        write_record(record_path(tmp_path, "finetune", "rte", f"s{seed}", f"{seed}" * 64),
                     {"kind": "finetune", "config": {"task": "rte", "seed": seed}})
    assert [r["config"]["seed"] for r in iter_records(tmp_path, "finetune", task="rte")] == [0, 1]
    assert [r["config"]["seed"] for r in iter_records(tmp_path, seed=1)] == [1]
    (tmp_path / "finetune" / "student.json").write_text('{"class": "BertForSequenceClassification", "config": {}}')
    assert len(list(iter_records(tmp_path, "finetune"))) == 2  # a model file's JSON beside the records is skipped


# --- data fingerprints in the key, safe loading, the audit --------------------------------------------------------

def _rte_dir(root, flip_first_label=False):
    """A glue_data/ directory with a hand-written, clearly synthetic RTE: 24 train and 8 dev pairs."""
    folder = root / "RTE"
    folder.mkdir(parents=True)
    for split, n in (("train", 24), ("dev", 8)):
        rows = ["index\tsentence1\tsentence2\tlabel"]
        for i in range(n):
            label = "entailment" if i % 2 == 0 else "not_entailment"
            if flip_first_label and split == "train" and i == 0:
                label = "not_entailment"
            rows.append(f"{i}\tSynthetic premise number {i} about a {split} cat.\tA cat is mentioned {i}.\t{label}")
        (folder / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    return root


def _rte_config(data_dir, **overrides):
    from flatcompress import get_profile

    return get_profile("smoke").config("rte", source="glue_dir", data_dir=str(data_dir), epochs=1, **overrides)


def test_a_missing_data_directory_is_an_error_before_any_lookup(capsys):
    from flatcompress.cli import main

    assert main(["finetune", "--task", "rte", "--data-dir", "/nonexistent", "--profile", "smoke"]) == 2
    assert "/nonexistent given by --data-dir (data_dir) does not exist" in capsys.readouterr().err


def test_the_key_follows_the_examples_not_where_they_were_read(tmp_path):
    from flatcompress.training import finetune

    first = finetune(_rte_config(_rte_dir(tmp_path / "a")), results_dir=tmp_path / "results", progress=False)
    copy = finetune(_rte_config(_rte_dir(tmp_path / "b")), results_dir=tmp_path / "results", progress=False)
    assert copy.cached and copy.path == first.path  # identical examples from another directory: the same run
    changed = finetune(_rte_config(_rte_dir(tmp_path / "c", flip_first_label=True)), results_dir=tmp_path / "results",
                       progress=False)
    assert not changed.cached and changed.record["key"] != first.record["key"]  # one changed label: a new run
    assert changed.record["data"]["fingerprint"]["train"] != first.record["data"]["fingerprint"]["train"]
    assert changed.record["data"]["fingerprint"]["eval"] == first.record["data"]["fingerprint"]["eval"]
    assert "data_dir" not in first.record["data"] and first.record["config"]["data_dir"] is None  # no machine paths
    split = first.record["task"]["main_split"]
    assert first.record["predictions"][split]["n"] == 8


def test_a_crafted_snapshot_is_refused(tmp_path):
    import pathlib

    import torch

    from flatcompress.training import load_snapshot

    class RunsCode:
        def __reduce__(self):
            return (pathlib.Path.touch, (tmp_path / "code-ran",))

    torch.save({"key": "x", "model": RunsCode()}, tmp_path / "run.partial.pt")
    with pytest.raises(RuntimeError, match="never unpickled"):
        load_snapshot(tmp_path / "run.partial.pt")
    assert not (tmp_path / "code-ran").exists()


def test_the_audit_passes_clean_records_and_names_what_is_wrong(tmp_path, smoke_config):
    from flatcompress.audit import audit
    from flatcompress.pruning.oneshot import one_shot_sweep
    from flatcompress.training import finetune

    results = tmp_path / "results" / "smoke"
    run = finetune(smoke_config(), results_dir=results, progress=False, save_checkpoint=True)
    one_shot_sweep(run, (0.0, 0.5), results_dir=results)
    clean = audit(tmp_path / "results")
    assert clean.ok and not clean.legacy, clean.errors
    assert "smoke: 2 records (finetune 1, oneshot 1)" in clean.summary()

    record = json.loads(run.path.read_text())
    write_record(run.path, {**record, "config": {**record["config"], "lr": 0.5}}, overwrite=True)  # a changed config
    oneshot = next((results / "oneshot").rglob("*.json"))
    payload = json.loads(oneshot.read_text())
    payload["rows"][1].pop("predictions")
    payload["note"] = "/home/someone/data"
    write_record(oneshot, payload, overwrite=True)
    errors = "\n".join(audit(tmp_path / "results").errors)
    assert "is not the key the current code computes" in errors
    assert "note is a machine path (/home/someone/data)" in errors
    assert "a oneshot record without per-example predictions" in errors
