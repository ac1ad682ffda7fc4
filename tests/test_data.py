import time
from pathlib import Path

import pytest

from flatcompress.data import encode, load_task, pad_collate
from flatcompress.data.hub import read_hub
from flatcompress.errors import DataFormatError, DataSourceError, HubUnavailableError
from flatcompress.tasks import get_task, task_names

# (train rows, dev rows) of the classic GLUE files, from ../shared/data/glue/README.md
GLUE_SIZES = {"rte": (2490, 277), "mrpc": (3668, 408), "sst2": (67349, 872), "cola": (8551, 1043),
              "stsb": (5749, 1500)}


def test_registry_has_the_papers_nine_tasks():
    assert task_names(in_paper=True) == ["mnli", "qqp", "stsb", "qnli", "mrpc", "rte", "sst2", "cola", "squad"]
    assert get_task("SST-2").name == "sst2" and get_task("sts-b").name == "stsb"
    assert get_task("mnli").eval_splits == ("validation_matched", "validation_mismatched")
    assert get_task("qqp").metrics == ("accuracy", "f1") and get_task("cola").main_metric == "mcc"
    with pytest.raises(ValueError, match="valid tasks: mnli, qqp"):
        get_task("glue")


@pytest.mark.parametrize("task", sorted(GLUE_SIZES))
def test_glue_dir_source_reads_every_row(glue_dir, task):
    data = load_task(task, source="glue_dir", data_dir=glue_dir)
    assert (len(data.train), len(data.main_eval)) == GLUE_SIZES[task]
    t = get_task(task)
    if t.kind == "regression":
        assert all(0.0 <= e.label <= 5.0 for e in data.train)
    else:
        assert {e.label for e in data.train} == set(range(t.num_labels))


_FORMATS = {  # invented rows in each classic glue_data/ format: no GLUE text; written to a temporary folder
    'CoLA/dev.tsv': (
        'src3\t1\t\tThe children sang a song.\n'
        'src3\t0\t*\tSang children the song a.\n'
    ).encode(),
    'CoLA/train.tsv': (
        'src1\t1\t\tThe dog chased the ball.\n'
        'src1\t0\t*\tThe dog the ball chased quickly the.\n'
        'src2\t1\t\tWe saw the film twice.\n'
        'src2\t0\t*\tSaw we film the twice.\n'
    ).encode(),
    'MRPC/dev.tsv': (
        '\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n'
        '1\t201\t202\tThe team won the final match.\tThe final match was won by the team.\n'
        '0\t203\t204\tA storm closed the airport.\tThe library added new books.\n'
    ).encode(),
    'MRPC/train.tsv': (
        '\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n'
        '1\t101\t102\tReferring to him as a leader, the council praised the mayor.\t'
        'The council praised the mayor as a leader.\n'
        '0\t103\t104\tThe shop opened a new branch downtown.\tThe weather was cold on Friday.\n'
        '1\t105\t106\tPrices rose by two percent in May.\tIn May, prices went up two percent.\n'
    ).encode(),
    'QNLI/dev.tsv': (
        'index\tquestion\tsentence\tlabel\n'
        '0\tWhat colour is the bridge?\tThe bridge was painted red.\tentailment\n'
        '1\tWhen does the museum open?\tThe cafe sells coffee.\tnot_entailment\n'
    ).encode(),
    'RTE/dev.tsv': (
        'index\tsentence1\tsentence2\tlabel\n'
        '0\tThe bridge was painted red last year.\tThe bridge is red.\tentailment\n'
        '1\tHe sold his bicycle to a neighbour.\tHe kept his bicycle.\tnot_entailment\n'
        '2\tRain fell all night over the valley.\tIt rained.\tentailment\n'
    ).encode(),
    'RTE/train.tsv': (
        'index\tsentence1\tsentence2\tlabel\n'
        '0\tA cat sat on the warm mat by the door.\tA cat sat on a mat.\tentailment\n'
        '1\tThe train left the station at noon.\tThe train never left.\tnot_entailment\n'
        '2\tShe planted three apple trees in spring.\tShe planted trees.\tentailment\n'
        '3\tThe museum opens on Mondays.\tThe museum is closed every day.\tnot_entailment\n'
    ).encode(),
    'SST-2/dev.tsv': (
        'sentence\tlabel\n'
        'a small delight . \t1\n'
        'nothing works here . \t0\n'
    ).encode(),
    'SST-2/train.tsv': (
        'sentence\tlabel\n'
        'a warm , funny film . \t1\n'
        'a dull and tired story . \t0\n'
        'the actors are wonderful . \t1\n'
        'it drags on forever . \t0\n'
    ).encode(),
    'STS-B/dev.tsv': (
        'index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n'
        '0\tmain-captions\tMSRvid\t2012test\t0004\tnone\tnone\tA boy is reading.\tA boy reads a book.\t4.000\n'
        '1\tmain-captions\tMSRvid\t2012test\t0005\tnone\tnone\tA bird is flying.\tA car is parked.\t0.000\n'
    ).encode(),
    'STS-B/train.tsv': (
        'index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n'
        '0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\t'
        'A man is playing a guitar.\tA man plays the guitar.\t4.800\n'
        '1\tmain-captions\tMSRvid\t2012test\t0002\tnone\tnone\t'
        'A woman is slicing an onion.\tA dog runs in a park.\t0.250\n'
        '2\tmain-news\tnews\t2013\t0003\tnone\tnone\tStocks fell on Monday.\tShares dropped Monday.\t3.600\n'
    ).encode(),
}


@pytest.fixture
def formats(tmp_path) -> Path:
    """A glue_data/ folder of invented rows: one header per format, MRPC's byte-order mark, CoLA without a header."""
    for name, content in _FORMATS.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)
    return tmp_path


@pytest.mark.parametrize("task,sizes,labels", [("rte", (4, 3), [0, 1, 0]), ("mrpc", (3, 2), [1, 0]),
                                               ("sst2", (4, 2), [1, 0]), ("cola", (4, 2), [1, 0]),
                                               ("stsb", (3, 2), [4.0, 0.0])])
def test_glue_dir_reads_every_format_on_any_clone(formats, task, sizes, labels):
    data = load_task(task, source="glue_dir", data_dir=formats)
    assert (len(data.train), len(data.main_eval)) == sizes
    assert [e.label for e in data.main_eval] == labels  # RTE: entailment is id 0, as on the hub
    if task == "mrpc":  # the header starts with a byte-order mark
        assert data.train[0].text_a.startswith("Referring to him")
    if task == "cola":  # no header row: the first line is an example
        assert data.train[0].text_a == "The dog chased the ball."
    with pytest.raises(DataSourceError, match="no 'train' split of QNLI"):
        load_task("qnli", source="glue_dir", data_dir=formats)


def test_glue_dir_labels_map_to_the_hub_order(glue_dir):
    rte = load_task("rte", source="glue_dir", data_dir=glue_dir)
    # RTE dev has 146 entailment (id 0) and 131 not_entailment (id 1)
    assert sum(e.label == 0 for e in rte.main_eval) == 146
    assert rte.info["majority_rate"] == pytest.approx(146 / 277)
    mrpc = load_task("mrpc", source="glue_dir", data_dir=glue_dir)  # header starts with a BOM
    assert mrpc.train[0].text_b.startswith("Referring to him")


def test_auto_source_prefers_glue_dir_then_hub(glue_dir, monkeypatch):
    monkeypatch.setenv("FLATCOMPRESS_GLUE_DIR", str(glue_dir))
    assert load_task("rte", max_train_examples=5).source == "glue_dir"
    assert load_task("rotten_tomatoes", max_train_examples=5).source == "bundled"
    with pytest.raises(HubUnavailableError):  # QQP is not in the shared directory: auto falls back to the hub
        load_task("qqp")


def test_glue_dir_missing_split_is_a_clear_error(glue_dir):
    with pytest.raises(DataSourceError, match="no 'train' split of QNLI"):
        load_task("qnli", source="glue_dir", data_dir=glue_dir)
    with pytest.raises(DataSourceError, match="is not a glue_data/ directory with QQP"):
        load_task("qqp", source="glue_dir", data_dir=glue_dir)


def test_malformed_file_names_file_and_line(tmp_path):
    (tmp_path / "RTE").mkdir()
    (tmp_path / "RTE" / "train.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\tb\n")
    (tmp_path / "RTE" / "dev.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n")
    with pytest.raises(DataFormatError, match=r"RTE/train.tsv:3: expected 4 tab-separated columns, found 3"):
        load_task("rte", source="glue_dir", data_dir=tmp_path)
    (tmp_path / "RTE" / "train.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n")
    with pytest.raises(DataFormatError, match=r"RTE/dev.tsv:2: label 'maybe' is not one of"):
        load_task("rte", source="glue_dir", data_dir=tmp_path)
    (tmp_path / "RTE" / "dev.tsv").write_bytes(b"index\tsentence1\n\xff\xfe\n")
    with pytest.raises(DataFormatError, match="cannot be read as UTF-8"):
        load_task("rte", source="glue_dir", data_dir=tmp_path)


def test_bad_source_arguments(glue_dir):
    with pytest.raises(ValueError, match="valid sources: auto, hub, glue_dir, bundled"):
        load_task("rte", source="ftp")
    with pytest.raises(DataSourceError, match="not bundled; bundled tasks: rotten_tomatoes, reuters8"):
        load_task("rte", source="bundled")
    with pytest.raises(DataSourceError, match="only available from source 'bundled'"):
        load_task("rotten_tomatoes", source="hub")
    with pytest.raises(ValueError, match="max_train_examples must be at least 1"):
        load_task("rotten_tomatoes", max_train_examples=0)


def test_hub_unreachable_fails_fast_naming_alternatives(monkeypatch):
    """A mocked network failure: the error comes at once and says what to do instead."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr("flatcompress.data.hub.hub_reachable", lambda timeout=3.0: "cannot connect (mocked)")
    start = time.perf_counter()
    with pytest.raises(HubUnavailableError) as info:
        load_task("mnli", source="hub")
    assert time.perf_counter() - start < 2
    message = str(info.value)
    assert "unreachable" in message and "glue_data/" in message and "MNLI/" in message
    assert "FLATCOMPRESS_GLUE_DIR" in message and "rotten_tomatoes" in message


def test_hub_offline_flag_fails_within_seconds(monkeypatch, tmp_path):
    """With HF_HUB_OFFLINE=1 and nothing cached, the real `datasets` call fails and is reported as such."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path))
    start = time.perf_counter()
    with pytest.raises(HubUnavailableError, match="could not load nyu-mll/glue/rte"):
        read_hub(get_task("rte"))
    assert time.perf_counter() - start < 30


def test_rotten_tomatoes_is_deduplicated_and_split_by_movie():
    data = load_task("rotten_tomatoes")
    train_texts = {e.text_a for e in data.train}
    dev_texts = {e.text_a for e in data.main_eval}
    assert len(train_texts) == len(data.train) and len(dev_texts) == len(data.main_eval)  # no duplicates
    assert not train_texts & dev_texts
    # 12,808 fresh/rotten snippets minus duplicates, all kept, about 20% in validation
    assert 12_700 < len(data.train) + len(data.main_eval) < 12_808
    assert 0.15 < len(data.main_eval) / (len(data.train) + len(data.main_eval)) < 0.25
    assert 0.55 < data.info["majority_rate"] < 0.62
    other = load_task("rotten_tomatoes", seed=1)
    assert {e.text_a for e in other.main_eval} != dev_texts  # the movie split depends on the data seed


def test_reuters8_uses_its_official_split():
    data = load_task("reuters8")
    assert (len(data.train), len(data.main_eval)) == (5485, 2189)
    assert {e.label for e in data.train} == set(range(8))


def test_seeded_subsets():
    a = load_task("rotten_tomatoes", max_train_examples=50, max_eval_examples=20, seed=3)
    b = load_task("rotten_tomatoes", max_train_examples=50, max_eval_examples=20, seed=3)
    c = load_task("rotten_tomatoes", max_train_examples=50, max_eval_examples=20, seed=4)
    assert a.train == b.train and a.main_eval == b.main_eval and len(a.train) == 50 and len(a.main_eval) == 20
    assert a.train != c.train


def test_encoding_pairs_and_dynamic_padding(glue_dir):
    from flatcompress.models import load_tokenizer

    tokenizer = load_tokenizer("minilm-l6")
    examples = load_task("rte", source="glue_dir", data_dir=glue_dir).train[:4]
    features = encode(examples, tokenizer, max_length=64)
    assert all(len(f["input_ids"]) <= 64 for f in features)
    assert all(f["input_ids"].count(tokenizer.sep_token_id) == 2 for f in features)  # [CLS] a [SEP] b [SEP]
    assert all(1 in f["token_type_ids"] for f in features)
    batch = pad_collate(features)
    longest = max(len(f["input_ids"]) for f in features)
    assert batch["input_ids"].shape == (4, longest)
    assert batch["attention_mask"].sum().item() == sum(len(f["input_ids"]) for f in features)


def test_run_inputs_are_the_runs_examples_encoded_when_first_read():
    from flatcompress import FinetuneConfig
    from flatcompress.data import run_inputs
    from flatcompress.models import load_tokenizer

    config = FinetuneConfig("rotten_tomatoes", model="tiny", max_length=16, max_train_examples=12, max_eval_examples=5)
    inputs = run_inputs(config, max_train_examples=3)
    assert len(inputs.data.train) == 3 and len(inputs.data.main_eval) == 5
    assert "train" not in vars(inputs) and "eval" not in vars(inputs)  # nothing encoded yet
    expected = encode(load_task("rotten_tomatoes", max_eval_examples=5).eval["validation"], load_tokenizer("tiny"), 16)
    assert inputs.main_eval == expected and "train" not in vars(inputs)
    assert max(len(f["input_ids"]) for f in inputs.train) <= 16 and inputs.pad_id == load_tokenizer("tiny").pad_token_id


def test_squad_json_loading_and_qa_head(tmp_path):
    import json

    from flatcompress.data import QAExample
    from flatcompress.models import load_model

    squad = {"data": [{"title": "t", "paragraphs": [{"context": "The tower was finished in 1889.", "qas": [
        {"id": "q1", "question": "When was it finished?", "answers": [{"text": "1889", "answer_start": 26}]}]}]}]}
    (tmp_path / "SQuAD").mkdir()
    for name in ("train-v1.1.json", "dev-v1.1.json"):
        (tmp_path / "SQuAD" / name).write_text(json.dumps(squad))
    data = load_task("squad", source="glue_dir", data_dir=tmp_path)
    example = data.main_eval[0]
    assert isinstance(example, QAExample) and example.answers == ("1889",)
    assert example.context[example.answer_starts[0]:].startswith("1889")
    assert "majority_rate" not in data.info
    model = load_model("tiny", get_task("squad"))
    assert model.qa_outputs.out_features == 2
    (tmp_path / "SQuAD" / "dev-v1.1.json").write_text("{not json")
    with pytest.raises(DataFormatError, match="not a SQuAD v1.1 JSON file"):
        load_task("squad", source="glue_dir", data_dir=tmp_path)
