"""Command line: `flatcompress tasks | models | profiles | finetune | sharpness | imp | oneshot | quantize | cofi |
reproduce | plan | sweep | audit`."""

from __future__ import annotations

import argparse
import json
import sys

from flatcompress.data.loading import SOURCES
from flatcompress.models import MODELS
from flatcompress.profiles import PROFILES, get_profile
from flatcompress.tasks import TASKS

__all__ = ["main"]


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _cmd_tasks(args: argparse.Namespace) -> int:
    rows = [("task", "metrics", "sources", "description")]
    for t in TASKS.values():
        sources = "bundled" if t.bundled else "hub, glue_dir"
        rows.append((t.name, ", ".join(t.metrics), sources, t.description + ("" if t.in_paper else " [not in paper]")))
    print(_table(rows))
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    rows = [("model", "offline", "description")]
    rows += [(m.name, "yes" if m.offline else "no (hub)", m.description) for m in MODELS.values()]
    print(_table(rows))
    return 0


def _cmd_profiles(args: argparse.Namespace) -> int:
    rows = [("profile", "model", "train/eval examples", "epochs", "seeds", "description")]
    for p in PROFILES.values():
        sizes = f"{p.max_train_examples or 'all'}/{p.max_eval_examples or 'all'}"
        if p.train_examples_by_task:
            sizes += " (" + ", ".join(f"{t} {n}" for t, n in p.train_examples_by_task.items()) + ")"
        epochs = str(p.epochs) + (" (" + ", ".join(f"{t} {e}" for t, e in p.epochs_by_task.items()) + ")"
                                  if p.epochs_by_task else "")
        rows.append((p.name, p.model, sizes, epochs, str(len(p.seeds)), p.description))
    print(_table(rows))
    return 0


def _config(args: argparse.Namespace):
    """The run's `FinetuneConfig` and results folder, every setting validated before any data or model is loaded."""
    profile = get_profile(args.profile)
    overrides = {k: getattr(args, k) for k in ("model", "optimizer", "lr", "epochs", "batch_size", "max_length",
                                               "max_train_examples", "max_eval_examples", "num_layers", "seed",
                                               "source", "data_dir") if getattr(args, k) is not None}
    if args.qat:
        overrides["qat"] = True
    if overrides.get("optimizer") == "sam":
        overrides["optimizer_kwargs"] = {"rho": args.rho if args.rho is not None else profile.rho}
    elif args.rho is not None:
        raise ValueError("--rho applies to --optimizer sam only")
    return profile.config(args.task, **overrides), args.results_dir or f"results/{profile.name}"


def _run(args: argparse.Namespace, save_checkpoint: bool):
    """Fine-tune, or return the cached run."""
    from flatcompress.training import finetune

    config, results_dir = _config(args)
    result = finetune(config, results_dir=results_dir, overwrite=args.overwrite, progress=not args.quiet,
                      save_checkpoint=save_checkpoint, device=args.device)
    return result, results_dir


def _cmd_sharpness(args: argparse.Namespace) -> int:
    from flatcompress.flatness.sharpness_records import measure_sharpness

    settings = dict(get_profile(args.profile).sharpness)
    if args.sharpness_examples is not None:
        settings["n_examples"] = args.sharpness_examples
    if args.sharpness_dim is not None:
        settings["dim"] = args.sharpness_dim or None
    result, results_dir = _run(args, save_checkpoint=True)
    record = measure_sharpness(result, results_dir=results_dir, cache_gib=args.subspace_cache_gib, **settings)
    print(json.dumps({"finetune_record": str(result.path), "score": record["score"], "sharpness": record["sharpness"],
                      "hessian_top_eigenvalue": record["hessian_top_eigenvalue"]}, indent=1))
    return 0


def _cmd_imp(args: argparse.Namespace) -> int:
    from flatcompress.pruning.imp import imp

    config, results_dir = _config(args)
    record = imp(config, args.schedule or get_profile(args.profile).imp_schedule, rewind=not args.no_rewind,
                 head=args.head, results_dir=results_dir, progress=not args.quiet, device=args.device)
    print(_table([("round", "sparsity", "score", "train s", "prune s")] +
                 [(str(r["round"]), f"{r['sparsity']:.4f}", f"{r['score']:.4f}", f"{r['train_seconds']:.0f}",
                   f"{r['prune_seconds']:.2f}") for r in record["rows"]]))
    print(record["path"])
    return 0


def _cmd_oneshot(args: argparse.Namespace) -> int:
    from flatcompress.config import check_sparsity
    from flatcompress.pruning.oneshot import one_shot_sweep

    sparsities = [check_sparsity(s) for s in args.sparsities or get_profile(args.profile).oneshot_sparsities]
    result, results_dir = _run(args, save_checkpoint=True)
    record = one_shot_sweep(result, sparsities, results_dir=results_dir)
    print(_table([("sparsity", "score")] + [(f"{r['sparsity']:.4f}", f"{r['score']:.4f}") for r in record["rows"]]))
    print(record["path"])
    return 0


def _cmd_quantize(args: argparse.Namespace) -> int:
    from flatcompress.quantization.quantize_records import QAT_SETTING, check_settings, measure_quantization

    settings = check_settings(args.settings or ([QAT_SETTING] if args.qat else ["torch-ao"]), args.qat)
    result, results_dir = _run(args, save_checkpoint=True)
    record = measure_quantization(result, settings, results_dir=results_dir)
    print(_table([("setting", "fp32", "int8", "MB")] +
                 [("fp32", f"{record['fp32_score']:.4f}", "", f"{record['fp32_bytes'] / 1e6:.1f}")] +
                 [(r["setting"], "", f"{r['score']:.4f}", f"{r['bytes'] / 1e6:.1f}") for r in record["rows"]]))
    print(record["path"])
    return 0


def _cmd_cofi(args: argparse.Namespace) -> int:
    from flatcompress.cofi.run import CoFiSettings, cofi

    overrides = {k: v for k, v in (("target", args.target), ("prune_epochs", args.prune_epochs)) if v is not None}
    settings = CoFiSettings(**{**get_profile(args.profile).cofi, **overrides})  # checked before any work
    teacher, results_dir = _run(args, save_checkpoint=True)
    record = cofi(teacher, settings, results_dir=results_dir, progress=not args.quiet, device=args.device,
                  save_checkpoint=args.save_student)
    print(_table([("teacher", "student", "sparsity", "accepted", "student params")] +
                 [(f"{record['teacher_score']:.4f}", f"{record['score']:.4f}", f"{record['sparsity']:.4f}",
                   str(record["accepted"]), f"{record['parameters']['student']:,}")]))
    print(record["path"])
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from flatcompress.book.reproduce import parse_parameters, reproduce

    rows = reproduce(args.profile, args.chapters, args.tasks, args.seeds, parse_parameters(args.p or []),
                     args.results_dir, progress=not args.quiet)
    if rows:
        columns = list(dict.fromkeys(k for row in rows for k in row))
        print(_table([tuple(columns)] + [tuple(_cell(row.get(c)) for c in columns) for row in rows]))
    return 0


def _cell(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else "" if value is None else str(value)


def _cmd_audit(args: argparse.Namespace) -> int:
    from flatcompress.audit import audit

    report = audit(args.results_dir)
    print(report.summary())
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    if args.verbose:
        for path in report.dirty:
            print(f"written from a tree with uncommitted changes: {path}")
    return 0 if report.ok else 1


def _selection(args: argparse.Namespace):
    from flatcompress.sweep import tier_plan

    return tier_plan(args.profile, args.seeds, args.chapters, args.results_dir, args.tasks)


def _cmd_plan(args: argparse.Namespace) -> int:
    from flatcompress.sweep import describe, write_plan
    from flatcompress.sweep.plan import trained_again

    jobs = _selection(args)
    rows = describe(jobs)
    def minutes(r: dict) -> str:
        return ("?" if r["minutes"] is None else f"{r['minutes']:.1f}") + ("" if r["record"] else " (est.)")

    print(_table([("job", "method", "after", "record", "minutes")] + [
        (r["id"], r["method"], ",".join(r["after"]) if len(r["after"]) < 3 else f"{len(r['after'])} jobs",
         r["record"] or ("(the chapter's notebook)" if r["method"] == "reproduce" else "missing"), minutes(r))
        for r in rows]))
    missing = [r for r in rows if r["record"] is None and r["method"] != "reproduce"]
    left = [r for r in rows if r["record"] is None]
    known = [r["minutes"] for r in left if r["minutes"] is not None]
    again = trained_again(rows)
    print(f"{len(rows)} jobs, {len(missing)} runs without a record and {len(left) - len(missing)} chapter notebooks: "
          f"about {sum(known) / 60:.1f} h of compute at the times measured for runs of the same kind (a notebook: "
          f"from its size)" + (f", {len(left) - len(known)} of them with no such run yet" if len(known) < len(left)
                               else ""))
    if again:
        print(f"+ {sum(r['minutes'] or 0 for r in again) / 60:.1f} h to train {len(again)} run(s) again for their "
              f"weights, which the runs after them need (weights are not committed): "
              f"{', '.join(r['id'] for r in again)}")
    if args.out:
        print(f"plan -> {write_plan(args.out, jobs)}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from flatcompress.sweep import load_plan, sweep, sweep_plan

    slurm = {k: v for k, v in (("partition", args.partition), ("time_min", args.time_min), ("mem_gb", args.mem_gb),
                                ("cluster", args.slurm_cluster)) if v is not None}
    if args.plan:
        if args.profile or args.chapters or args.tasks or args.seeds:
            raise ValueError("--plan runs a plan file: leave out --profile, --chapters, --tasks and --seeds")
        plan = sweep_plan(load_plan(args.plan), args.name)
    else:
        if not args.profile:
            raise ValueError("name a --profile (or a --plan file)")
        plan = sweep_plan(_selection(args), args.name)
    print(f"plan: {plan}")
    stale = args.break_locks_after
    states = sweep(plan, args.engine, args.workers, args.threads_per_run, args.gpus_per_run, args.address,
                   stale * 3600 if stale is not None else None, args.poll, slurm, args.hours)
    return 1 if any(s in ("failed", "blocked") for s in states.values()) else 0


def _cmd_finetune(args: argparse.Namespace) -> int:
    result, _ = _run(args, save_checkpoint=args.save_checkpoint)
    record = result.record
    summary = {"record": str(result.path) if result.path else None, "cached": result.cached,
               "task": record["task"]["name"], "score": record["score"], "metrics": record["metrics"],
               "best_epoch": record["best_epoch"], "majority_rate": record["data"].get("majority_rate"),
               "wall_time_s": round(record["wall_time_s"], 1)}
    print(json.dumps(summary, indent=1))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flatcompress", description="Train flat, then compress: a reproduction.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("tasks", help="list the tasks").set_defaults(func=_cmd_tasks)
    sub.add_parser("models", help="list the models").set_defaults(func=_cmd_models)
    sub.add_parser("profiles", help="list the scale tiers").set_defaults(func=_cmd_profiles)
    ft = sub.add_parser("finetune", help="fine-tune one model on one task and write its result record")
    sh = sub.add_parser("sharpness", help="fine-tune (or reuse a run), then record its epsilon-sharpness (Table 3)")
    for p in (ft, sh):
        _add_run_arguments(p)
    ft.add_argument("--save-checkpoint", action="store_true", help="also save the best model's weights")
    ft.set_defaults(func=_cmd_finetune)
    sh.add_argument("--sharpness-examples", type=int, help="validation examples for the loss (default: the tier's)")
    sh.add_argument("--sharpness-dim", type=int, help="random subspace dimension p; 0 = the full parameter space "
                                                      "(default: the tier's, 100 at cpu)")
    sh.add_argument("--subspace-cache-gib", type=float, default=6.0,
                    help="memory for keeping the random subspace (speed only; MiniLM-L6: 8.5 GiB fastest, 4.2 at fp16)")
    sh.set_defaults(func=_cmd_sharpness)
    ip = sub.add_parser("imp", help="iterative magnitude pruning: lottery tickets (rewind) or standard pruning")
    _add_run_arguments(ip)
    ip.add_argument("--schedule", nargs="+", type=float, help="sparsities, from 0 rising (default: the tier's)")
    ip.add_argument("--no-rewind", action="store_true", help="standard pruning: continue from the pruned weights")
    ip.add_argument("--head", choices=("keep", "rewind"), default="keep",
                    help="with rewinding: keep the trained head (Chen et al., default) or draw a fresh one")
    ip.set_defaults(func=_cmd_imp)
    op = sub.add_parser("oneshot", help="prune a fine-tuned run one-shot at a sweep of sparsities (no retraining)")
    _add_run_arguments(op)
    op.add_argument("--sparsities", nargs="+", type=float, help="default: the tier's (0-60%% in 5%% steps)")
    op.set_defaults(func=_cmd_oneshot)
    qp = sub.add_parser("quantize", help="fine-tune (or reuse a run), then score it in fp32 and int8 (Table 8)")
    _add_run_arguments(qp)
    qp.add_argument("--settings", nargs="+", help="back-ends (torch-ao, torchao, onnxruntime), each optionally "
                                                  "with +emb to quantize the embeddings too (default: torch-ao)")
    qp.set_defaults(func=_cmd_quantize)
    cp = sub.add_parser("cofi", help="CoFi structured pruning of a student distilled from a fine-tuned teacher "
                                      "(the run's --optimizer is the teacher's; Table 2)")
    _add_run_arguments(cp)
    cp.add_argument("--target", type=float, help="target sparsity in (0, 1) (default: the tier's; paper 0.95)")
    cp.add_argument("--prune-epochs", type=int, help="pruning epochs (default: the tier's)")
    cp.add_argument("--save-student", action="store_true", help="keep the pruned student's weights")
    cp.set_defaults(func=_cmd_cofi)
    rp = sub.add_parser("reproduce", help="run the book's chapters through papermill (skips finished runs)")
    rp.add_argument("--profile", required=True, choices=list(PROFILES), metavar="PROFILE",
                    help=f"scale tier, one of {', '.join(PROFILES)}")
    rp.add_argument("--chapters", nargs="+", help="chapter names (default: all)")
    rp.add_argument("--tasks", nargs="+", choices=list(TASKS), metavar="TASK", help="tasks (default: the tier's)")
    rp.add_argument("--seeds", nargs="+", type=int, help="seeds (default: the tier's)")
    rp.add_argument("-p", action="append", metavar="KEY=VALUE", help="a chapter parameter (repeatable)")
    rp.add_argument("--results-dir", help="where records and executed notebooks go (default: results/<profile>)")
    rp.add_argument("--quiet", action="store_true", help="no progress bars")
    rp.set_defaults(func=_cmd_reproduce)
    pl = sub.add_parser("plan", help="list every run the chapters need: what each waits for, its record, its cost")
    sw = sub.add_parser("sweep", help="compute every missing run of the chapters with an engine (local, ray, slurm)")
    for p, required in ((pl, True), (sw, False)):
        p.add_argument("--profile", required=required, choices=list(PROFILES), metavar="PROFILE",
                       help=f"scale tier, one of {', '.join(PROFILES)}")
        p.add_argument("--chapters", nargs="+", help="chapter names (default: all)")
        p.add_argument("--tasks", nargs="+", choices=list(TASKS), metavar="TASK", help="tasks (default: the tier's)")
        p.add_argument("--seeds", nargs="+", type=int, help="seeds (default: the tier's)")
        p.add_argument("--results-dir", help="where records go (default: results/<profile>)")
    pl.add_argument("--out", help="also write the plan as JSON (for `sweep --plan`)")
    pl.set_defaults(func=_cmd_plan)
    from flatcompress.sweep import ENGINES, default_engine

    sw.add_argument("--plan", help="run this plan file instead of the chapters' plan")
    sw.add_argument("--name", help="the sweep's name: its plan and state in <results>/sweeps/<name>.json[.state]")
    sw.add_argument("--engine", choices=ENGINES, help=f"default: {default_engine()} (ray when installed)")
    sw.add_argument("--workers", type=int, default=2, help="runs at once (default 2)")
    sw.add_argument("--threads-per-run", type=int, default=1, help="CPU threads of each run (default 1)")
    sw.add_argument("--gpus-per-run", type=float, default=0.0, help="GPUs of each run; Ray packs fractions (default 0)")
    sw.add_argument("--address", help="ray: join this cluster (host:port, ray://host:port or auto)")
    sw.add_argument("--break-locks-after", type=float, metavar="HOURS",
                    help="treat other hosts' run locks older than this as stale (a crashed node's)")
    sw.add_argument("--partition", help="slurm: the partition")
    sw.add_argument("--time-min", type=int, help="slurm: each job's time limit in minutes (default 240)")
    sw.add_argument("--mem-gb", type=float, help="slurm: each job's memory (default 16)")
    sw.add_argument("--slurm-cluster", choices=("slurm", "local", "debug"),
                    help="slurm: submitit's executor (default: slurm when sbatch exists; local runs without Slurm)")
    sw.add_argument("--poll", type=float, default=60.0, help="seconds between progress lines (default 60)")
    sw.add_argument("--hours", type=float, help="a time budget: start no job expected to end more than HOURS after "
                    "the sweep's start (at the times of finished jobs like it); the rest waits for the next sweep")
    sw.set_defaults(func=_cmd_sweep)
    au = sub.add_parser("audit", help="check every result record: schema, keys, no machine paths, predictions")
    au.add_argument("--results-dir", default="results", help="the folder of tiers to check (default: results)")
    au.add_argument("--verbose", action="store_true", help="also list records written from a dirty tree")
    au.set_defaults(func=_cmd_audit)
    return parser


def _add_run_arguments(ft: argparse.ArgumentParser) -> None:
    ft.add_argument("--task", required=True, choices=list(TASKS), metavar="TASK", help=f"one of {', '.join(TASKS)}")
    ft.add_argument("--profile", default="cpu", choices=list(PROFILES), metavar="PROFILE",
                    help=f"scale tier, one of {', '.join(PROFILES)} (default: cpu)")
    ft.add_argument("--model", choices=list(MODELS), metavar="MODEL", help=f"one of {', '.join(MODELS)}")
    ft.add_argument("--optimizer", help="adamw (default), sam or swa (the tier's learning rate for it, and the "
                    "paper's averaging: the last half of the checkpoints)")
    ft.add_argument("--rho", type=float, help="SAM's neighbourhood radius (default: the tier's; the paper's is 0.05)")
    ft.add_argument("--qat", action="store_true", help="quantization-aware training (Q8BERT's int8 recipe); measure "
                    "the run with `quantize --qat`, which scores its integer model")
    ft.add_argument("--source", choices=SOURCES, help="data source (default: auto)")
    ft.add_argument("--data-dir", help="a classic glue_data/ directory (default: $FLATCOMPRESS_GLUE_DIR)")
    ft.add_argument("--lr", type=float)
    ft.add_argument("--epochs", type=int)
    ft.add_argument("--batch-size", type=int)
    ft.add_argument("--max-length", type=int)
    ft.add_argument("--max-train-examples", type=int)
    ft.add_argument("--max-eval-examples", type=int)
    ft.add_argument("--num-layers", type=int, help="keep only the first k encoder layers")
    ft.add_argument("--seed", type=int)
    ft.add_argument("--device", help="cpu, cuda or mps (default: best available)")
    ft.add_argument("--results-dir", help="where result records go (default: results/<profile>)")
    ft.add_argument("--overwrite", action="store_true", help="replace an existing record instead of returning it")
    ft.add_argument("--quiet", action="store_true", help="no progress bars")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, KeyError, FileNotFoundError, NotImplementedError, RuntimeError, ConnectionError,
            ImportError) as exc:
        print(f"flatcompress: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
