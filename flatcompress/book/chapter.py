"""What a book chapter needs from the library: its tier, where its records live, and runs that are read or computed.

A chapter opens a `Chapter` from its papermill parameters and asks it for runs:

    ch = Chapter.open("train-flat", profile="cpu", compute=False)
    result = ch.finetune("rte", optimizer="sam", seed=0)

With `compute=False` (how the book is built) a run is only read from its committed result record,
and a missing record raises `MissingRecordError` naming the command that produces it, so the build
never trains a model. With `compute=True` (`flatcompress reproduce`, Colab, a laptop) missing runs
are computed and their records written; finished ones come back from the records. The `smoke`
tier always computes: it takes seconds and is what nbval runs.

Records live under `<results root>/<profile>/`, where the root is `$FLATCOMPRESS_RESULTS_DIR`, else
the `results/` folder of the flatcompress checkout (the one the notebook runs in, or the one an
editable install points to), else `./results`.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from flatcompress.errors import MissingRecordError
from flatcompress.masks import Ticket
from flatcompress.profiles import Profile, get_profile
from flatcompress.records import weights_path
from flatcompress.tasks import get_task
from flatcompress.training import FinetuneResult, finetune

if TYPE_CHECKING:
    import torch

__all__ = ["Chapter", "checkout_root", "results_root", "benchmark_record", "environment"]


def checkout_root(start: str | Path | None = None) -> Path | None:
    """The flatcompress repository this code runs in: above `start` (the working directory), else the
    checkout of an editable install; None for a plain `pip install`."""
    here = Path(start or Path.cwd()).resolve()
    package_checkout = Path(__file__).resolve().parents[2]
    for folder in (here, *here.parents, package_checkout):
        if (folder / "flatcompress" / "book" / "chapter.py").is_file() and (folder / "_toc.yml").is_file():
            return folder
    return None


def results_root(start: str | Path | None = None) -> Path:
    """Where result records live (see the module docstring)."""
    if os.environ.get("FLATCOMPRESS_RESULTS_DIR"):
        return Path(os.environ["FLATCOMPRESS_RESULTS_DIR"])
    checkout = checkout_root(start)
    return checkout / "results" if checkout else Path("results")


def benchmark_record(name: str) -> dict[str, Any] | None:
    """The committed result of `benchmarks/<name>.py` (`benchmarks/results/<name>.json`); None without a checkout
    or before the benchmark has run."""
    checkout = checkout_root()
    path = checkout / "benchmarks" / "results" / f"{name}.json" if checkout else None
    return json.loads(path.read_text()) if path is not None and path.is_file() else None


def environment() -> dict[str, str]:
    """The versions and device a chapter runs with (printed in every chapter's first cell)."""
    import platform

    import torch
    import transformers

    import flatcompress
    from flatcompress.provenance import device_name

    device = "cuda" if torch.cuda.is_available() else "cpu"
    return {"flatcompress": flatcompress.__version__, "torch": torch.__version__,
            "transformers": transformers.__version__, "python": platform.python_version(),
            "device": device_name(device)}


def _as_list(value: Any) -> Any:
    """A list given as a string (`"rte, mrpc"`, `"['rte']"`, `"0 1 2"`) split into its items; anything else as is."""
    if isinstance(value, str):
        return [item for item in re.split(r"[\s,\[\]'\"]+", value) if item]
    return value


@dataclass(frozen=True)
class Chapter:
    """One chapter's runs at one tier. Build it with `Chapter.open`."""

    name: str
    profile: Profile
    compute: bool
    results_dir: Path
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    used: list[str] = field(default_factory=list, compare=False, repr=False)  # records this chapter read or wrote
    _dev_inputs: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # `score`'s, per task

    @classmethod
    def open(cls, name: str, profile: str = "cpu", compute: bool = False, tasks: Sequence[str] | None = None,
             seeds: Sequence[int] | None = None, results_dir: str | Path | None = None) -> "Chapter":
        """Validate the chapter's parameters before anything runs; `None` means the tier's default."""
        tier = get_profile(profile)
        tasks, seeds = _as_list(tasks), _as_list(seeds)  # papermill -p passes "rte mrpc" or "['rte']" as a string
        default = tier.chapter_tasks.get(name, tier.tasks)
        task_names = tuple(get_task(t).name for t in (tasks if tasks is not None else default))
        seed_list = tuple(int(s) for s in (seeds if seeds is not None else tier.chapter_seeds.get(name, tier.seeds)))
        if not task_names or not seed_list:
            raise ValueError("a chapter needs at least one task and one seed")
        if any(s < 0 for s in seed_list):
            raise ValueError(f"seeds must be non-negative integers, got {list(seed_list)}")
        root = Path(results_dir) if results_dir is not None else results_root() / tier.name
        return cls(name, tier, bool(compute) or tier.name == "smoke", root, task_names, seed_list)

    def seeds_for(self, task: str) -> tuple[int, ...]:
        """The chapter's seeds that the tier runs for `task` (a low-power task may get fewer)."""
        return self.profile.task_seeds(task, self.seeds)

    def seeds_text(self) -> str:
        """The chapter's seeds per task, for its text: "3" or, where its tasks have different seeds, "3–7"."""
        return self.profile.seeds_text(self.tasks, self.seeds)

    def command(self, task: str | None = None, seed: int | None = None) -> str:
        """The shell command that computes this chapter's runs (or one task and seed of them)."""
        parts = ["flatcompress reproduce", f"--profile {self.profile.name}", f"--chapters {self.name}"]
        if task is not None:
            parts.append(f"--tasks {task}")
        if seed is not None:
            parts.append(f"--seeds {seed}")
        return " ".join(parts)

    def _missing(self, exc: MissingRecordError, what: str, task: str, seed: int) -> MissingRecordError:
        return MissingRecordError(f"{what} has no result record at the {self.profile.name!r} tier ({exc}). "
                                  f"Produce it with `{self.command(task, seed)}`, or open the chapter with compute=True.")

    def config(self, task: str, optimizer: str = "adamw", seed: int = 0, rho: float | None = None, **overrides: Any):
        """The tier's `FinetuneConfig` for one run (SAM's rho, the tier's unless given, and SWA's checkpoint spacing,
        the paper's for the run's epochs, recorded explicitly)."""
        if optimizer == "sam":
            overrides.setdefault("optimizer_kwargs", {"rho": self.profile.rho if rho is None else rho})
        if optimizer == "swa":
            from flatcompress.flatness.swa import default_every

            epochs = overrides.get("epochs") or self.profile.config(task).epochs
            overrides.setdefault("optimizer_kwargs", {"every": default_every(epochs)})
        return self.profile.config(task, optimizer=optimizer, seed=seed, **overrides)

    def imp_optimizers(self, task: str) -> tuple[str, ...]:
        """The optimizers whose IMP chains this tier runs on `task`: Adam and SAM, and SWA on the tier's `swa_tasks`
        (the paper ran SWA only with rewinding)."""
        return ("adamw", "sam", "swa") if get_task(task).name in self.profile.swa_tasks else ("adamw", "sam")

    def finetune(self, task: str, optimizer: str = "adamw", seed: int = 0, ticket: Ticket | None = None,
                 keep_weights: bool = False, **overrides: Any) -> FinetuneResult:
        """Read one run of this tier, or (compute=True) fine-tune it, keeping its weights for later measurements.

        `ticket` fine-tunes the pre-trained weights under its fixed masks (an IMP ticket of this or another task,
        a random mask: Table 6, Fig. 4); the run's record keeps the ticket's origin. `keep_weights=True` makes
        sure the result's weights exist (`result.load_model()`): committed records carry none, so with
        compute=True a run whose weights were not kept trains again (deterministic: the same model as its record).
        """
        return self._finetune(task, optimizer, seed, keep_weights, ticket, **overrides)

    def model(self, task: str, optimizer: str = "adamw", seed: int = 0, device: str | None = None,
              **overrides: Any) -> torch.nn.Module:
        """The best-epoch model of one run (for exercises): `finetune(..., keep_weights=True).load_model()`."""
        return self._finetune(task, optimizer, seed, True, **overrides).load_model(device)

    def score(self, model: torch.nn.Module, task: str) -> float:
        """`model`'s main metric on `task`'s main dev split, the examples this tier's runs are scored on (for
        exercises that change a model: prune, quantize, perturb it)."""
        from flatcompress.data import run_inputs
        from flatcompress.training import evaluate_splits

        if task not in self._dev_inputs:  # read and encoded once per task: exercises score many variants of a model
            self._dev_inputs[task] = run_inputs(self.config(task), max_train_examples=1)
        inputs = self._dev_inputs[task]
        main = inputs.data.main_split
        metrics, _ = evaluate_splits(model, {main: inputs.main_eval}, task)
        return metrics[main][get_task(task).main_metric]

    def _finetune(self, task: str, optimizer: str, seed: int, need_weights: bool, ticket: Ticket | None = None,
                  **overrides: Any) -> FinetuneResult:
        config = self.config(task, optimizer, seed, **overrides)
        masks, origin = (ticket.masks, ticket.origin) if ticket is not None else (None, None)
        result = None
        try:
            result = finetune(config, masks, results_dir=self.results_dir, progress=False, compute=False)
        except MissingRecordError as exc:
            if not self.compute:
                what = f"{task} fine-tuned with {optimizer} (seed {seed}{f', masks {origin}' if origin else ''})"
                raise self._missing(exc, what, task, seed) from None
        weights_missing = result is not None and need_weights and not weights_path(result.path).exists()
        if weights_missing and not self.compute:
            raise MissingRecordError(f"the weights of {task} with {optimizer} (seed {seed}) were not kept (records "
                                     "carry none); open the chapter with compute=True to train the run again")
        if result is None or weights_missing:
            # train (or, for a record whose weights were not kept, train again: deterministic) and keep the weights
            result = finetune(config, masks, results_dir=self.results_dir, progress=True, save_checkpoint=True,
                              masks_origin=origin)
        self.used.append(str(result.path))
        return result

    def _measure(self, measure: Any, what: str, task: str, optimizer: str, seed: int, /,
                 overrides: dict[str, Any] | None = None, **settings: Any) -> dict[str, Any]:
        """A measurement record of one run (with `overrides` of its settings): read it, or (compute=True) measure
        the run's weights."""
        overrides = overrides or {}
        result = self._finetune(task, optimizer, seed, False, **overrides)
        try:
            record = measure(result, results_dir=self.results_dir, compute=False, **settings)
        except MissingRecordError as exc:
            if not self.compute:
                raise self._missing(exc, f"{what} of {task} with {optimizer} (seed {seed})", task, seed) from None
            result = self._finetune(task, optimizer, seed, True, **overrides)
            record = measure(result, results_dir=self.results_dir, compute=True, **settings)
        self.used.append(record["path"])
        return record

    def sharpness(self, task: str, optimizer: str = "adamw", seed: int = 0, full_space: bool = False,
                  subspace_seed: int = 0) -> dict[str, Any]:
        """The sharpness record (Table 3) of one fine-tuned run of this tier.

        `full_space=True` searches all parameters (Keskar's A = I) instead of the tier's random subspace;
        `subspace_seed` draws another random subspace (and start of the Hessian's power iteration).
        """
        from flatcompress.flatness.sharpness_records import measure_sharpness

        settings = {**self.profile.sharpness, **({"dim": None} if full_space else {}),
                    **({"seed": subspace_seed} if subspace_seed else {}), "progress": self.compute}
        return self._measure(measure_sharpness, "the sharpness", task, optimizer, seed, **settings)

    def contours(self, task: str, seed: int = 0, head: str = "sam") -> dict[str, Any]:
        """The loss-contour record (Fig. 6) of the plane through the pre-trained model and this tier's Adam and SAM
        runs of `task` and `seed`, every point with `head`'s task head, at the tier's `contours` settings."""
        from flatcompress.flatness.contours import measure_contours

        settings = {**self.profile.contours, "results_dir": self.results_dir, "progress": self.compute}
        runs = [self._finetune(task, optimizer, seed, False) for optimizer in ("adamw", "sam")]
        try:
            record = measure_contours(*runs, head, **settings, compute=False)
        except MissingRecordError as exc:
            if not self.compute:
                raise self._missing(exc, f"the loss contours of {task} (seed {seed}, {head} head)", task, seed) from None
            runs = [self._finetune(task, optimizer, seed, True) for optimizer in ("adamw", "sam")]
            record = measure_contours(*runs, head, **settings)
        self.used.append(record["path"])
        return record

    def dropout_replay(self, task: str, optimizer: str = "sam", seed: int = 0) -> dict[str, Any]:
        """The dropout-replay record of one fine-tuned run: the loss rise SAM sees with and without replay."""
        from flatcompress.flatness.dropout_replay import measure_dropout_replay

        return self._measure(measure_dropout_replay, "the dropout-replay check", task, optimizer, seed)

    def one_shot(self, task: str, optimizer: str = "adamw", seed: int = 0) -> dict[str, Any]:
        """The one-shot pruning sweep (Fig. 7) of one fine-tuned run, at the tier's `oneshot_sparsities`."""
        from flatcompress.pruning.oneshot import one_shot_sweep

        return self._measure(one_shot_sweep, "the one-shot pruning sweep", task, optimizer, seed,
                             sparsities=self.profile.oneshot_sparsities)

    def quantization(self, task: str, optimizer: str = "adamw", seed: int = 0,
                     settings: Sequence[str] = ("torch-ao",), qat: bool = False) -> dict[str, Any]:
        """fp32 and int8 scores (Table 8) of one fine-tuned run, one row per quantization setting
        (`flatcompress.quantization.quantize_records`; "torch-ao" is the paper's recipe). `qat=True`: the run
        trained with quantization-aware training instead, and its integer model (setting "qat-int8")."""
        from flatcompress.quantization.quantize_records import QAT_SETTING, measure_quantization

        if qat:
            return self._measure(measure_quantization, "the QAT run's integer model", task, optimizer, seed,
                                 {"qat": True}, settings=[QAT_SETTING])
        return self._measure(measure_quantization, "the int8 quantization", task, optimizer, seed,
                             settings=list(_as_list(settings)))

    def cofi(self, task: str, optimizer: str = "adamw", seed: int = 0, **overrides: Any) -> dict[str, Any]:
        """The CoFi record (Table 2) of the student pruned while distilling this tier's `optimizer` teacher,
        with the tier's `cofi` settings (`overrides` change them, e.g. `target=0.9`)."""
        from flatcompress.cofi.run import CoFiSettings, cofi

        settings = CoFiSettings(**{**self.profile.cofi, "seed": seed, **overrides})
        return self._measure(lambda result, results_dir, compute: cofi(result, settings, results_dir, compute,
                                                                       progress=compute),
                             "the CoFi run", task, optimizer, seed)

    def imp(self, task: str, optimizer: str = "adamw", seed: int = 0, rewind: bool = True,
            **overrides: Any) -> dict[str, Any]:
        """The IMP record (rewind=True, lottery tickets) or standard-pruning record (rewind=False) of one run,
        over the tier's `imp_schedule`. Its rows are the rounds; round 0 is the full fine-tuning run.
        `overrides` change the runs' settings (e.g. `l1=1e-6` for A.7's control)."""
        from flatcompress.pruning.imp import imp

        config = self.config(task, optimizer, seed, **overrides)
        try:
            record = imp(config, self.profile.imp_schedule, rewind, results_dir=self.results_dir, compute=False)
        except MissingRecordError as exc:
            if not self.compute:
                what = f"{'IMP' if rewind else 'standard pruning'} of {task} with {optimizer} (seed {seed})"
                raise self._missing(exc, what, task, seed) from None
            record = imp(config, self.profile.imp_schedule, rewind, results_dir=self.results_dir)
        self.used.extend([record["path"]] + [str(self.results_dir / r["record"]) for r in record["rows"]])
        return record

    def _round(self, task: str, optimizer: str, seed: int, sparsity: float, rewind: bool) -> tuple[dict, dict]:
        """The IMP (or standard pruning) record and its row at `sparsity`, a pruned round of the tier's schedule."""
        record = self.imp(task, optimizer, seed, rewind)
        rows = {round(r["target_sparsity"], 6): r for r in record["rows"]}
        row = rows.get(round(sparsity, 6))
        if row is None or row["mask"] is None:
            raise ValueError(f"sparsity {sparsity} is not a pruned round of the {self.profile.name!r} schedule "
                             f"{list(self.profile.imp_schedule)}")
        return record, row

    def ticket(self, task: str, optimizer: str, seed: int, sparsity: float, rewind: bool = True) -> Ticket:
        """The mask IMP (rewind=True) or standard pruning found for `task` with `optimizer` at `sparsity`,
        which must be on the tier's schedule."""
        from flatcompress.pruning.mask_files import load_masks

        _, row = self._round(task, optimizer, seed, sparsity, rewind)
        origin = {"kind": "imp" if rewind else "std", "task": task, "optimizer": optimizer, "seed": seed,
                  "sparsity": row["target_sparsity"]}
        return Ticket(load_masks(self.results_dir / row["mask"]).masks, origin)

    def ticket_sharpness(self, task: str, optimizer: str = "adamw", seed: int = 0,
                         sparsity: float | None = None) -> dict[str, Any]:
        """The sharpness record (Table 4) of the IMP ticket at `sparsity` (default: the task's reference sparsity, or
        the tier's fallback), over the weights its mask keeps, with the tier's sharpness settings. Computing it
        needs the round's weights: kept by the chain, or trained again round by round (`pruning.imp.round_result`)."""
        from flatcompress.flatness.sharpness_records import measure_sharpness
        from flatcompress.pruning.imp import round_result
        from flatcompress.pruning.mask_files import load_masks
        from flatcompress.records import read_record

        sparsity = self.reference_sparsity(task) if sparsity is None else sparsity
        record, row = self._round(task, optimizer, seed, sparsity, True)
        masks = load_masks(self.results_dir / row["mask"]).masks
        path = self.results_dir / row["record"]
        measure = functools.partial(measure_sharpness, **self.profile.sharpness, masks=masks, progress=self.compute)
        try:
            found = measure(FinetuneResult(read_record(path), path), results_dir=self.results_dir, compute=False)
        except MissingRecordError as exc:
            if not self.compute:
                raise self._missing(exc, f"the sharpness of the {sparsity:.0%} ticket of {task} with {optimizer} "
                                         f"(seed {seed})", task, seed) from None
            found = measure(round_result(record, row["round"], self.results_dir, progress=True),
                            results_dir=self.results_dir)
        self.used.append(found["path"])
        return found

    def reference_sparsity(self, task: str) -> float:
        """The sparsity at which this chapter compares tickets on `task`: the paper's reference sparsity (Table 5)
        when it is on the tier's IMP schedule, otherwise the tier's last pruned round not above 60% (the
        mask-or-optimizer chapter's fallback)."""
        from flatcompress.book.paper import REFERENCE_SPARSITY

        pruned = [s for s in self.profile.imp_schedule if s > 0]
        reference = REFERENCE_SPARSITY.get(task)
        if reference is not None and any(abs(reference - s) < 1e-9 for s in pruned):
            return reference
        return max([s for s in pruned if s <= 0.6] or pruned[:1])

    def random_ticket(self, task: str, sparsity: float, seed: int = 0) -> Ticket:
        """A random mask over the same prunable set, at exactly `sparsity` (Table 6's control)."""
        from flatcompress.masks import prunable_names
        from flatcompress.models import get_model_spec, load_model
        from flatcompress.pruning.magnitude import random_masks

        model = load_model(self.profile.model, get_task(task), self.profile.num_layers)
        names = prunable_names(model, get_model_spec(self.profile.model).pooler_pretrained)
        origin = {"kind": "random", "task": task, "optimizer": None, "seed": seed, "sparsity": sparsity}
        return Ticket(random_masks(model, sparsity, seed, names), origin)

    def save_summary(self, rows: list[dict[str, Any]]) -> Path | None:
        """Write the chapter's paper-vs-ours rows and the records behind them for `flatcompress reproduce`.

        Nothing is written when the chapter only reads (the book build).
        """
        if not self.compute:
            return None
        path = self.results_dir / "chapters" / f"{self.name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"chapter": self.name, "profile": self.profile.name, "tasks": list(self.tasks),
                   "seeds": list(self.seeds), "summary": rows,
                   "records": sorted({os.path.relpath(p, self.results_dir) for p in self.used})}
        path.write_text(json.dumps(payload, indent=1, default=str) + "\n")
        return path
