import json

import pytest

from flatcompress.records import config_key, iter_records, record_path, write_record
from flatcompress.errors import RecordExistsError


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


def test_iter_records_filters_by_config(tmp_path):
    for seed in (0, 1):
        write_record(record_path(tmp_path, "finetune", "rte", f"s{seed}", f"{seed}" * 64),
                     {"kind": "finetune", "config": {"task": "rte", "seed": seed}})
    assert [r["config"]["seed"] for r in iter_records(tmp_path, "finetune", task="rte")] == [0, 1]
    assert [r["config"]["seed"] for r in iter_records(tmp_path, seed=1)] == [1]
    (tmp_path / "finetune" / "student.json").write_text('{"class": "BertForSequenceClassification", "config": {}}')
    assert len(list(iter_records(tmp_path, "finetune"))) == 2  # a model file's JSON beside the records is skipped
