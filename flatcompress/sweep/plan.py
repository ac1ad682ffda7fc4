"""The runs a tier's book needs, as a plan (`flatcompress plan`): fine-grained jobs where a run is one call, and
one `reproduce` job per chapter and seed where the chapter composes its runs (tickets, masks), so a plan and the
chapters cannot disagree about what a run is.

Order matters on a machine whose weights do not outlive the session: each model's measurements follow its
fine-tuning run in the plan, so the queue (which takes the first job whose prerequisites are done) measures a
model while its checkpoint is on disk.

    flatcompress plan --profile cpu --chapters train-flat        # the runs, their records and costs
    flatcompress sweep --profile cpu --workers 2 --threads-per-run 1   # run what is missing
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Sequence

from flatcompress.profiles import Profile, get_profile
from flatcompress.sweep.jobs import Job

__all__ = ["tier_plan", "describe", "trained_again"]

_OPTIMIZERS = ("adamw", "sam")


def _tasks(profile: Profile, chapter: str) -> tuple[str, ...]:
    return profile.chapter_tasks.get(chapter, profile.tasks)


@functools.lru_cache(maxsize=None)
def _full_space(model: str) -> bool:
    """Does `model` fit a full-space sharpness search (`sharpness_records.full_space_fits`)?"""
    from flatcompress.flatness.sharpness_records import full_space_fits
    from flatcompress.models import get_model_spec
    from flatcompress.pruning.magnitude import meta_model

    architecture = get_model_spec(model).architecture
    if architecture is None:  # a small test model
        return True
    return full_space_fits(sum(p.numel() for p in meta_model(architecture).parameters()))


@functools.lru_cache(maxsize=None)
def _parameter(chapter: str, name: str):
    """A chapter's default for one of its parameters, read from its notebook (the plan runs what the chapter runs)."""
    import ast

    import papermill

    from flatcompress.book.reproduce import CHAPTERS, book_dir

    return ast.literal_eval(papermill.inspect_notebook(str(book_dir() / CHAPTERS[chapter].notebook))[name]["default"])


def tier_plan(profile: str, seeds: Sequence[int] | None = None, chapters: Sequence[str] | None = None,
              results_dir: str | None = None, tasks: Sequence[str] | None = None) -> list[Job]:
    """Every run of `chapters` (default: all) at tier `profile`, over `seeds` (default: the tier's) and `tasks`
    (default: every task the chapters run)."""
    from flatcompress.book.reproduce import CHAPTERS
    from flatcompress.flatness.contours import has_contours

    tier = get_profile(profile)
    seeds = tuple(seeds if seeds is not None else tier.seeds)

    def runs(chapter: str, task: str, seed: int) -> bool:
        """Does `chapter` run `seed` of `task` at this tier (its own seeds, and the task's)?"""
        return (chapter in chapters and seed in tier.chapter_seeds.get(chapter, seeds)
                and seed in tier.task_seeds(task, seeds) and (tasks is None or task in tasks))
    chapters = list(chapters or CHAPTERS)
    unknown = [c for c in chapters if c not in CHAPTERS]
    if unknown:
        raise ValueError(f"unknown chapter(s) {unknown}; chapters: {', '.join(CHAPTERS)}")
    jobs: list[Job] = []

    def add(job_id: str, chapter: str, method: str, after: Sequence[str] = (), **args) -> str:
        if all(j.id != job_id for j in jobs):
            jobs.append(Job(job_id, chapter, tier.name, method, args, tuple(after), results_dir))
        return job_id

    sharpness_tasks = [t for t in tier.tasks if t in (tier.sharpness_tasks or tier.tasks)]
    full_space = _full_space(tier.model)
    model_tasks = list(dict.fromkeys([*tier.tasks, *(t for c in chapters for t in _tasks(tier, c))]))
    for seed in seeds:  # seed by seed: the first seeds of every task finish first (a pilot comes for free)
        for task in model_tasks:
            if not any(runs(c, task, seed) for c in chapters if task in _tasks(tier, c)):
                continue
            for optimizer in _OPTIMIZERS:
                run = add(f"ft-{task}-{optimizer}-{seed}", "train-flat", "finetune", task=task, optimizer=optimizer,
                          seed=seed)
                if runs("train-flat", task, seed) and task in sharpness_tasks and seed in (tier.sharpness_seeds or seeds):
                    for subspace in tier.subspace_seeds:
                        add(f"sharp-{task}-{optimizer}-{seed}-{subspace}", "train-flat", "sharpness", [run], task=task,
                            optimizer=optimizer, seed=seed, subspace_seed=subspace)
                    if task == sharpness_tasks[0] and seed == seeds[0] and full_space:
                        add(f"sharpfull-{task}-{optimizer}-{seed}", "train-flat", "sharpness", [run], task=task,
                            optimizer=optimizer, seed=seed, full_space=True)
                    if task == sharpness_tasks[0] and seed == seeds[0] and optimizer == "sam":
                        add(f"replay-{task}-{optimizer}-{seed}", "train-flat", "dropout_replay", [run], task=task,
                            optimizer=optimizer, seed=seed)
                if task in _tasks(tier, "pruning-without-retraining") and runs("pruning-without-retraining", task, seed):
                    add(f"oneshot-{task}-{optimizer}-{seed}", "pruning-without-retraining", "one_shot", [run],
                        task=task, optimizer=optimizer, seed=seed)
                if task in _tasks(tier, "quantization") and runs("quantization", task, seed):
                    add(f"quant-{task}-{optimizer}-{seed}", "quantization", "quantization", [run], task=task,
                        optimizer=optimizer, seed=seed, settings=_parameter("quantization", "settings"))
                if task in _tasks(tier, "structured-pruning") and runs("structured-pruning", task, seed):
                    add(f"cofi-{task}-{optimizer}-{seed}", "structured-pruning", "cofi", [run], task=task,
                        optimizer=optimizer, seed=seed)
            for optimizer in tier.qat_optimizers:  # claim 11: quantization-aware training, then its integer model
                if (task in _tasks(tier, "quantization") and runs("quantization", task, seed)
                        and seed in tier.qat_seeds(task, optimizer, seeds)):
                    qat = add(f"qat-{task}-{optimizer}-{seed}", "quantization", "finetune", task=task,
                              optimizer=optimizer, seed=seed, qat=True)
                    add(f"quant-qat-{task}-{optimizer}-{seed}", "quantization", "quantization", [qat], task=task,
                        optimizer=optimizer, seed=seed, qat=True)
            if runs("train-flat", task, seed) and has_contours(task) and seed == seeds[0]:  # Fig. 6, every task
                for head in _OPTIMIZERS:
                    add(f"contours-{task}-{head}-{seed}", "train-flat", "contours",
                        [f"ft-{task}-{o}-{seed}" for o in _OPTIMIZERS], task=task, seed=seed, head=head)
        imp_jobs = []
        for chapter in ("lottery-tickets", "mask-or-optimizer", "tickets-travel"):
            for task in _tasks(tier, chapter):
                if not runs(chapter, task, seed):
                    continue
                for optimizer in _OPTIMIZERS:
                    for rewind in (True, False):
                        imp_jobs.append(add(f"{'imp' if rewind else 'std'}-{task}-{optimizer}-{seed}", "lottery-tickets",
                                            "imp", [f"ft-{task}-{optimizer}-{seed}"], task=task, optimizer=optimizer,
                                            seed=seed, rewind=rewind))
                    # Table 4: each ticket's sharpness right after its chain, while the chain's weights are kept
                    if (chapter == "lottery-tickets" and task in sharpness_tasks
                            and seed in (tier.sharpness_seeds or seeds)):
                        add(f"sharp-ticket-{task}-{optimizer}-{seed}", chapter, "ticket_sharpness",
                            [f"imp-{task}-{optimizer}-{seed}"], task=task, optimizer=optimizer, seed=seed)
                for model in [m for m, ts in tier.other_models.items() if task in ts and chapter == "lottery-tickets"]:
                    for optimizer in _OPTIMIZERS:  # claim 16: other models under IMP with rewinding (A.12)
                        run = add(f"ft-{model}-{task}-{optimizer}-{seed}", chapter, "finetune", task=task,
                                  optimizer=optimizer, seed=seed, model=model)
                        imp_jobs.append(add(f"imp-{model}-{task}-{optimizer}-{seed}", chapter, "imp", [run], task=task,
                                            optimizer=optimizer, seed=seed, rewind=True, model=model))
                if chapter == "lottery-tickets" and task in tier.swa_tasks:  # claim 12: IMP with SWA (rewinding, A.2)
                    run = add(f"ft-{task}-swa-{seed}", chapter, "finetune", task=task, optimizer="swa", seed=seed)
                    imp_jobs.append(add(f"imp-{task}-swa-{seed}", chapter, "imp", [run], task=task, optimizer="swa",
                                        seed=seed, rewind=True))
                    if task in sharpness_tasks and seed in (tier.sharpness_seeds or seeds):
                        add(f"sharp-ticket-{task}-swa-{seed}", chapter, "ticket_sharpness", [f"imp-{task}-swa-{seed}"],
                            task=task, optimizer="swa", seed=seed)
        if "mask-or-optimizer" in chapters:  # A.7's control: IMP and standard pruning with Adam + l1
            l1 = _parameter("mask-or-optimizer", "l1")
            for task in [t for t in _tasks(tier, "mask-or-optimizer") if runs("mask-or-optimizer", t, seed)]:
                for rewind in (True, False):
                    imp_jobs.append(add(f"{'imp' if rewind else 'std'}-l1-{task}-{seed}", "mask-or-optimizer", "imp",
                                        [f"ft-{task}-adamw-{seed}"], task=task, optimizer="adamw", seed=seed,
                                        rewind=rewind, l1=l1))
        for chapter in ("mask-or-optimizer", "tickets-travel"):
            if chapter in chapters and seed in tier.chapter_seeds.get(chapter, seeds):
                narrowed = {"tasks": [t for t in _tasks(tier, chapter) if t in tasks]} if tasks is not None else {}
                if narrowed.get("tasks") != []:  # it waits for the IMP chains of its own tasks
                    own = set(narrowed.get("tasks") or _tasks(tier, chapter))
                    after = [j.id for j in jobs if j.id in imp_jobs and j.args["task"] in own]
                    add(f"chapter-{chapter}-{seed}", chapter, "reproduce", after, seeds=[seed], **narrowed)
    for chapter in chapters:  # each chapter once more over every seed: it computes whatever is still missing
        before = [j.id for j in jobs if j.chapter == chapter or (chapter != "train-flat" and j.id.startswith("ft-"))]
        narrowed = {"tasks": [t for t in _tasks(tier, chapter) if t in tasks]} if tasks is not None else {}
        if narrowed.get("tasks") == []:
            continue
        add(f"chapter-{chapter}", chapter, "reproduce", before,
            seeds=[s for s in seeds if s in tier.chapter_seeds.get(chapter, seeds)], **narrowed)
    return jobs


def describe(jobs: Sequence[Job]) -> list[dict]:
    """One row per job: its id, method, what it waits for, its record (relative to its results folder) if it
    exists, and its minutes: measured for a run with a record, else estimated (`flatcompress.sweep.eta`: the
    median of the measured runs like it; a chapter's notebook from its size), None without a basis. Nothing is
    computed: each job's call is made read-only, so the plan reports exactly what a chapter would find. A
    chapter's notebook that finished with the same tasks and seeds, all its records still there, has its stamp as
    its record and the minutes it took (`reproduce.finished`: run again, it skips). A fine-tuning run with a record
    also says whether its weights are kept (`weights`; see `trained_again`)."""
    from flatcompress.book.reproduce import finished
    from flatcompress.errors import MissingRecordError
    from flatcompress.records import read_record, weights_path
    from flatcompress.sweep.eta import estimates, record_minutes
    from flatcompress.sweep.jobs import execute

    rows, measured = [], {}
    for job in jobs:
        row = {"id": job.id, "method": job.method, "after": list(job.after), "record": None, "minutes": None}
        if job.method == "reproduce":  # a notebook that finished with these tasks and seeds only reads, if run again
            stamp = finished(job.profile, job.chapter, job.args.get("tasks"), job.args.get("seeds"), job.results())
            if stamp is not None:
                row["record"] = str(stamp.relative_to(job.results()))
                row["minutes"] = json.loads(stamp.read_text()).get("wall_time_s", 0.0) / 60
        else:
            try:
                found = execute(job, compute=False)
            except MissingRecordError:
                found = None
            if found is not None:
                path = Path(found["record"]).resolve()
                results = job.results().resolve()
                row["record"] = str(path.relative_to(results) if path.is_relative_to(results) else path)
                row["minutes"] = record_minutes(read_record(path))
                if job.method == "finetune":
                    row["weights"] = weights_path(path).exists()
                if row["minutes"] is not None:
                    measured[job.id] = row["minutes"]
        rows.append(row)
    guessed = estimates(jobs, measured)
    for row in rows:
        if row["record"] is None:
            row["minutes"] = guessed[row["id"]]
    return rows


def trained_again(rows: Sequence[dict]) -> list[dict]:
    """Of `describe`'s rows, the fine-tuning runs that a run without a record trains again first: those with a record
    but no weights (weights are not committed), which it needs (deterministic: the same model again)."""
    needed = {a for r in rows if r["record"] is None and r["method"] != "reproduce" for a in r["after"]}
    return [r for r in rows if r["id"] in needed and r["method"] == "finetune" and r.get("weights") is False]
