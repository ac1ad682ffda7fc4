import pytest

from flatcompress import FinetuneConfig, check_sparsity, get_profile
from flatcompress.cli import main


@pytest.mark.parametrize("overrides, message", [
    ({"lr": 0}, "lr must be > 0"),
    ({"lr": -1e-5}, "lr must be > 0"),
    ({"epochs": 0}, "epochs must be at least 1"),
    ({"batch_size": 0}, "batch_size must be at least 1"),
    ({"micro_batch_size": 64}, "micro_batch_size must be in"),
    ({"max_length": 4}, "max_length must be at least 8"),
    ({"max_train_examples": 0}, "max_train_examples must be at least 1"),
    ({"grad_clip": 0}, "grad_clip must be > 0"),
    ({"num_layers": 0}, "num_layers must be at least 1"),
    ({"model": "gpt-2"}, "valid models: bert-base-uncased"),
    ({"optimizer": "lion"}, "valid optimizers: adamw"),
    ({"optimizer_kwargs": {"rho": 0.05}}, "does not take"),
    ({"source": "s3"}, "valid sources"),
])
def test_invalid_settings_are_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        FinetuneConfig(task="rte", **overrides)


def test_unknown_names():
    with pytest.raises(ValueError, match="valid tasks"):
        FinetuneConfig(task="imdb")
    with pytest.raises(ValueError, match="valid profiles: smoke, cpu, colab, paper"):
        get_profile("laptop")
    with pytest.raises(ValueError, match="unknown setting"):
        get_profile("cpu").config("rte", learning_rate=1e-5)


def test_a_records_config_reads_back_typed_and_unknown_fields_are_named():
    config = FinetuneConfig("rte", optimizer="sam", optimizer_kwargs={"rho": 0.02}, seed=3, holdout=100)
    stored = config.to_dict()
    assert FinetuneConfig.from_record(stored) == config
    older = {k: v for k, v in stored.items() if k not in ("l1", "holdout", "precision")}  # before those fields
    assert FinetuneConfig.from_record(older) == FinetuneConfig("rte", optimizer="sam", optimizer_kwargs={"rho": 0.02},
                                                               seed=3)
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['warmup'\].*valid settings: adam_eps"):
        FinetuneConfig.from_record({**stored, "warmup": 0.1})
    assert config.stem() == "minilm-l6-sam-seed3" and config.stem(seed=7) == "minilm-l6-sam-seed7"


def test_the_paper_tier_runs_squad_with_its_own_recipe():
    paper = get_profile("paper")
    squad = paper.config("squad", optimizer="sam", seed=1)
    assert (squad.lr, squad.batch_size, squad.max_length, squad.epochs) == (3e-5, 16, 384, 2)  # BERT-Tickets' recipe
    assert (squad.optimizer, squad.seed) == ("sam", 1) and paper.config("sst2").max_length == 128
    assert "squad" in paper.tasks and "squad" not in paper.sharpness_tasks
    assert "squad" not in paper.chapter_tasks["structured-pruning"] and "squad" not in get_profile("colab").tasks


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5])
def test_sparsity_outside_unit_interval(bad):
    with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\)"):
        check_sparsity(bad)
    assert check_sparsity(0.0) == 0.0 and check_sparsity(0.9) == 0.9


def test_bad_input_fails_before_any_model_is_loaded(monkeypatch, capsys):
    def boom(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr("flatcompress.training.load_model", boom)
    monkeypatch.setattr("flatcompress.training.run_inputs", boom)
    assert main(["finetune", "--task", "rte", "--epochs", "0"]) == 2
    assert "epochs must be at least 1" in capsys.readouterr().err
    assert main(["finetune", "--task", "rte", "--batch-size", "0"]) == 2
    with pytest.raises(SystemExit):
        main(["finetune", "--task", "imdb"])
    with pytest.raises(SystemExit):
        main(["finetune", "--task", "rte", "--profile", "laptop"])


def test_profiles_resolve_the_papers_epochs():
    paper = get_profile("paper")
    assert paper.config("rte").epochs == 10 and paper.config("sst2").epochs == 3
    assert paper.config("mnli").lr == 2e-5 and paper.config("mnli").batch_size == 32
    assert paper.config("mnli").max_length == 128 and paper.model == "bert-base-uncased"
    assert get_profile("cpu").config("rte", seed=2).seed == 2


def test_a_tiers_data_is_described_per_task_with_its_overrides():
    from flatcompress.profiles import Profile

    tier = Profile("t", "a test tier", "tiny", lr=1e-3, epochs=2, tasks=("sst2", "rotten_tomatoes", "mrpc"),
                   max_train_examples=1000, train_examples_by_task={"mrpc": None}, epochs_by_task={"mrpc": 1})
    assert tier.data_text() == ("SST-2, Rotten Tomatoes: 1,000 training examples × 2 epochs; "
                                "MRPC: the full training set × 1 epoch")
    assert tier.data_text(["mrpc", "sst2"], epochs=False) == ("MRPC: the full training set; "
                                                               "SST-2: 1,000 training examples")


def test_a_low_power_task_runs_only_its_own_seeds():
    from flatcompress.profiles import Profile

    tier = Profile("t", "a test tier", "tiny", lr=1e-3, epochs=2, tasks=("sst2", "mrpc"), seeds=(0, 1, 2, 3),
                   seeds_by_task={"mrpc": (0, 2)})
    assert tier.task_seeds("sst2") == (0, 1, 2, 3) and tier.task_seeds("mrpc") == (0, 2)
    assert tier.task_seeds("mrpc", [2, 3, 5]) == (2,) and tier.task_seeds("sst2", [5]) == (5,)
    assert tier.seeds_text() == "2–4" and tier.seeds_text(["sst2"]) == "4" and tier.seeds_text(seeds=[0, 2]) == "2"
