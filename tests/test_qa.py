"""Extractive question answering (SQuAD v1.1) through the one fine-tuning loop, on the synthetic SQuAD-format files
in tests/data/SQuAD and the tiny random BERT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from flatcompress.config import FinetuneConfig
from flatcompress.data import QAExample, run_inputs
from flatcompress.data.qa import best_answers, doc_stride, encode_qa
from flatcompress.metrics import squad_exact_match, squad_f1, squad_scores
from flatcompress.models import load_tokenizer

DATA = Path(__file__).parent / "data"


def qa_config(**overrides) -> FinetuneConfig:
    settings = dict(task="squad", model="tiny", lr=1e-3, epochs=2, batch_size=4, max_length=48, source="glue_dir")
    return FinetuneConfig(**{**settings, **overrides})


@pytest.fixture(scope="module", autouse=True)
def squad_dir():
    """The data directory as users set it (records keep no paths, so a run's config never names it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLATCOMPRESS_GLUE_DIR", str(DATA))
        yield


@pytest.fixture(scope="module")
def qa_run(tmp_path_factory):
    from flatcompress.training import finetune

    results = tmp_path_factory.mktemp("qa")
    return finetune(qa_config(), results_dir=results, progress=False, save_checkpoint=True), results


def test_doc_stride_is_bert_tickets_at_384():
    assert (doc_stride(384), doc_stride(128), doc_stride(48)) == (128, 42, 16)


def test_training_windows_point_at_the_answer_tokens():
    tokenizer = load_tokenizer("tiny")
    features = run_inputs(qa_config()).train
    first = features[1]  # "Who built the lighthouse of Varnholm?" -> "the harbour guild"
    answer = tokenizer.decode(first["input_ids"][first["start_positions"]:first["end_positions"] + 1])
    assert answer == "the harbour guild"
    for feature in features:  # every short training context fits one window, which holds its answer
        assert 0 < feature["start_positions"] <= feature["end_positions"] < len(feature["input_ids"])


def test_a_long_context_is_cut_into_overlapping_windows_and_a_window_without_the_answer_points_at_cls():
    tokenizer = load_tokenizer("tiny")
    context = " ".join(f"word{i}" for i in range(40)) + " The key is under the mat."
    example = QAExample("x", "Where is the key?", context, ("under the mat",), (context.index("under the mat"),))
    train = encode_qa([example], tokenizer, 32, train=True)
    assert len(train) >= 2
    assert (train[0]["start_positions"], train[0]["end_positions"]) == (0, 0)  # the first window misses it
    last = train[-1]
    assert tokenizer.decode(last["input_ids"][last["start_positions"]:last["end_positions"] + 1]) == "under the mat"
    windows = encode_qa([example], tokenizer, 32, train=False)
    spans = [[o for o in w["offsets"] if o is not None] for w in windows]
    for before, after in zip(spans, spans[1:]):  # consecutive windows share doc_stride(32) = 10 context tokens
        assert len(set(map(tuple, before)) & set(map(tuple, after))) == doc_stride(32)
    assert all(w["example"] == 0 and w["offsets"][0] is None for w in windows)  # [CLS] is outside the context
    assert [(w["start_positions"], w["end_positions"]) for w in windows] == [
        (f["start_positions"], f["end_positions"]) for f in train]  # a dev loss has the same targets


def test_question_too_long_is_refused_with_the_setting_to_change():
    tokenizer = load_tokenizer("tiny")
    example = QAExample("x", "why " * 40, "A short context.", ("short",), (2,))
    with pytest.raises(ValueError, match="raise max_length"):
        encode_qa([example], tokenizer, 32, train=True)


def test_best_span_is_the_highest_valid_start_plus_end_over_windows():
    context = "alpha beta gamma delta"
    offsets = [None, None, (0, 5), (6, 10), (11, 16), (17, 22), None]  # [CLS], a question token, 4 words, [SEP]
    window = {"example": 0, "offsets": offsets, "context": context, "answers": ("gamma",)}
    # token:       [CLS]     q  alpha  beta gamma delta [SEP]
    start = np.array([9.0, -10.0, -10.0, -10.0, 3.0, 8.0, -10.0])
    end = np.array([9.0, -10.0, -10.0, 8.0, 2.0, -10.0, -10.0])
    logits = np.stack([start, end], -1)  # [CLS] 18 is outside the context, delta..beta 16 ends before it starts;
    # the valid best is gamma..gamma, 3 + 2 = 5 (beta..beta and delta..delta score -2)
    other = {**window, "offsets": [None, (11, 16), (17, 22)]}
    other_logits = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.5]])  # "gamma delta": 4.5 in the second window
    answers, golds = best_answers([window, other], [logits, other_logits])
    assert answers == ["gamma"] and golds == [("gamma",)]
    assert best_answers([window], [logits], max_answer_length=0)[0] == [""]  # no valid span: the empty answer


def test_squad_scores_by_hand():
    golds = [("red granite", "granite"), ("red granite",), ("1904",)]
    preds = ["The red granite", "granite bridge", "1905"]
    scores = squad_scores(golds, preds)
    # normalized "red granite" matches; "granite bridge" vs "red granite": 1 common token, P = R = 1/2, F1 = 1/2
    np.testing.assert_allclose(scores, [[1.0, 1.0], [0.5, 0.0], [0.0, 0.0]])
    assert squad_f1(golds, preds) == pytest.approx(0.5) and squad_exact_match(golds, preds) == pytest.approx(1 / 3)


def test_a_squad_run_records_per_question_scores_whose_means_are_its_metrics(qa_run):
    from flatcompress.predictions import read_scores

    result, _ = qa_run
    record = result.record
    block = record["predictions"]["validation"]
    assert block["n"] == 4 and record["data"]["n_eval"]["validation"] == 4
    assert record["task"]["main_metric"] == "squad_f1" and record["predicted_classes"] is None
    for metric in ("squad_f1", "exact_match"):
        assert read_scores(block, metric).mean() == pytest.approx(record["metrics"]["validation"][metric], abs=1e-3)
    assert record["score"] == record["metrics"]["validation"]["squad_f1"]
    with pytest.raises(ValueError, match="has: squad_f1, exact_match"):
        read_scores(block, "accuracy")


def test_squad_predictions_come_from_the_model_text(qa_run):
    """Re-scoring the saved model by hand (logits -> spans -> F1) gives the recorded score."""
    from flatcompress.training import predict

    result, _ = qa_run
    model = result.load_model("cpu")
    features = run_inputs(result.config).eval["validation"]
    logits = predict(model, features)
    assert [l.shape for l in logits] == [(len(f["input_ids"]), 2) for f in features]
    answers, golds = best_answers(features, logits)
    contexts = {f["example"]: f["context"] for f in features}
    assert all(answer in contexts[i] for i, answer in enumerate(answers))  # spans of the context ("" included)
    assert squad_f1(golds, answers) == pytest.approx(result.score)


def test_sam_on_squad_trains_and_masks_stay_zero(tmp_path):
    from flatcompress.masks import prunable_names
    from flatcompress.pruning.magnitude import magnitude_masks
    from flatcompress.training import finetune, starting_model

    config = qa_config(optimizer="sam", optimizer_kwargs={"rho": 0.05}, epochs=1)
    model = starting_model(config)
    names = prunable_names(model)
    assert not any("pooler" in n for n in names)  # BertForQuestionAnswering has no pooler
    assert sum(dict(model.named_parameters())[n].numel() for n in names) == 2 * (4 * 64 * 64 + 2 * 64 * 128)
    masks = magnitude_masks(model, 0.5, names)
    result = finetune(config, masks=masks, results_dir=None, progress=False)
    params = dict(result.model.named_parameters())
    assert all(bool((params[n][~m] == 0).all()) for n, m in masks.items())
    assert np.isfinite(result.score) and result.record["history"][0]["train_loss"] > 0


def test_imp_one_shot_and_ptq_run_on_squad(qa_run):
    from flatcompress.pruning.imp import imp
    from flatcompress.pruning.oneshot import one_shot_sweep
    from flatcompress.quantization.quantize_records import measure_quantization

    result, results = qa_run
    chain = imp(qa_config(epochs=1), sparsities=(0.0, 0.5), results_dir=results, progress=False)
    assert [round(r["sparsity"], 2) for r in chain["rows"]] == [0.0, 0.5]
    oneshot = one_shot_sweep(result, (0.0, 0.3), results_dir=results)
    assert oneshot["rows"][0]["score"] == pytest.approx(result.score)
    assert "scores" in oneshot["rows"][1]["predictions"]["validation"]
    quantized = measure_quantization(result, results_dir=results)
    assert quantized["fp32_score"] == pytest.approx(result.score)
    assert 0.0 <= quantized["rows"][0]["score"] <= 1.0


def test_squad_comparisons_bootstrap_the_per_question_scores(qa_run):
    from flatcompress.stats import ModelEval, compare, health

    result, _ = qa_run
    model = ModelEval.from_record(result.record)
    assert model.paired and model.metric == "squad_f1" and model.labels is None
    assert health(model).floor == 0.0
    estimate = compare([(1.0, [[(1.0, model)]]), (-1.0, [[(1.0, model)]])])
    assert estimate.value == 0.0 and estimate.low == 0.0 and estimate.high == 0.0  # paired: a model minus itself


def test_structured_pruning_and_contours_refuse_question_answering(qa_run):
    from flatcompress.cofi.run import cofi
    from flatcompress.flatness.contours import measure_contours

    result, _ = qa_run
    with pytest.raises(ValueError, match="question-answering"):
        cofi(result, results_dir=None)
    with pytest.raises(ValueError, match="question answering is not supported"):
        measure_contours(result, result, results_dir=None)


def test_qat_runs_on_a_qa_model():
    from flatcompress.quantization.qat import convert_int8
    from flatcompress.training import evaluate, finetune

    result = finetune(qa_config(qat=True, epochs=1), results_dir=None, progress=False)
    features = run_inputs(result.config).eval["validation"]
    int8 = convert_int8(result.model.cpu())
    assert set(evaluate(int8, features, "squad")) == {"squad_f1", "exact_match"}
    assert torch.isfinite(torch.tensor(result.score))


def test_sharpness_of_a_qa_model_reads_its_dev_loss(qa_run):
    from flatcompress.flatness.sharpness_records import measure_sharpness

    result, _ = qa_run
    record = measure_sharpness(result, results_dir=None, epsilons=(1e-3,), dim=4, n_examples=4, maxiter=2,
                               hessian_iters=2)
    assert record["n_examples"] == 6  # the 4 dev questions' windows
    assert record["loss"] > 0 and record["sharpness"]["0.001"] >= 0


def _roberta_tokenizer(folder: Path):
    """A RoBERTa tokenizer built offline: byte-level BPE with RoBERTa's special tokens and no merges (every byte a
    token), so it has RoBERTa's pair format (`<s> A </s></s> B </s>`, no token types, padding id 1) without the
    hub's vocabulary."""
    import json

    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import RobertaTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    vocab = {t: i for i, t in enumerate(specials + sorted(ByteLevel.alphabet()))}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return RobertaTokenizerFast(str(folder / "vocab.json"), str(folder / "merges.txt"))


def test_a_roberta_tokenizer_goes_through_the_same_encoders_and_model(tmp_path):
    from transformers import RobertaConfig, RobertaForQuestionAnswering

    from flatcompress.data import Example, encode, pad_collate
    from flatcompress.training import evaluate

    tokenizer = _roberta_tokenizer(tmp_path)
    pairs = encode([Example("Hi there", "Yo", 1), Example("A", "B", 0)], tokenizer, 32)
    assert "token_type_ids" not in pairs[0]
    assert tokenizer.convert_ids_to_tokens(pairs[1]["input_ids"]) == ["<s>", "A", "</s>", "</s>", "B", "</s>"]
    batch = pad_collate(pairs, tokenizer.pad_token_id)
    assert batch["input_ids"][1, 6:].tolist() == [1] * 8 and "token_type_ids" not in batch  # RoBERTa pads with 1

    context = "The lighthouse of Varnholm was built in 1871 by the harbour guild."
    example = QAExample("a", "Who built it?", context, ("the harbour guild",), (context.index("the harbour guild"),))
    windows = encode_qa([example], tokenizer, 64, train=False)  # one token a character: two windows
    assert len(windows) == 2 and (windows[0]["start_positions"], windows[0]["end_positions"]) == (0, 0)
    last = windows[-1]
    assert tokenizer.decode(last["input_ids"][last["start_positions"]:last["end_positions"] + 1]) == "the harbour guild"

    torch.manual_seed(0)
    model = RobertaForQuestionAnswering(RobertaConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=80, pad_token_id=1, type_vocab_size=1)).eval()
    metrics = evaluate(model, windows, "squad")
    assert set(metrics) == {"squad_f1", "exact_match"} and 0.0 <= metrics["squad_f1"] <= 1.0


def test_dropout_replay_names_the_training_set_it_lacks(qa_run):
    from flatcompress.flatness.dropout_replay import measure_dropout_replay

    result, _ = qa_run
    with pytest.raises(ValueError, match="8 batches of 4 training examples; this run's squad training set has 12"):
        measure_dropout_replay(result, results_dir=None, draws=8, batch_size=4)
