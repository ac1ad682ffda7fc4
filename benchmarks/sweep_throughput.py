"""Sweep throughput: one plan with 1 worker against 2 workers (1 thread each), and each engine's overhead per run.

The plan is the `smoke` tier's runs of Train flat and Pruning without retraining (fine-tuning, subspace sharpness,
dropout replay and one-shot sweeps on the smoke tasks, seeds 0 to 3), without the chapter notebooks and the
full-space searches (two one-minute runs that would leave one worker idle at the end). Each sweep writes
to its own temporary folder, so every one computes the whole plan. Overhead per run is the sweep's wall time less
the time its jobs report, per worker, divided by the number of jobs. Target: 2 workers at least 1.7 times faster,
overhead under 2 s a run. Run it on an otherwise idle machine: the ratio is of the cores it finds free.

    python benchmarks/sweep_throughput.py [--engines local ray]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from flatcompress.provenance import provenance
from flatcompress.records import write_record
from flatcompress.sweep import sweep, sweep_plan, tier_plan
from flatcompress.sweep.runner import state_dir


def _one(engine: str, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        plan = tier_plan("smoke", seeds=[0, 1, 2, 3], chapters=["train-flat", "pruning-without-retraining"],
                         results_dir=folder)
        jobs = [j for j in plan if j.method != "reproduce" and not j.id.startswith("sharpfull")]
        plan = sweep_plan(jobs, "bench")
        start = time.perf_counter()
        states = sweep(plan, engine, workers=workers, threads=1, poll=600)
        wall = time.perf_counter() - start
        seconds = [json.loads(p.read_text())["seconds"] for p in state_dir(plan).glob("*.done")]
    if set(states.values()) != {"done"}:
        raise RuntimeError(f"the {engine} sweep did not finish: {states}")
    overhead = (wall * workers - sum(seconds)) / len(seconds)
    print(f"{engine}, {workers} worker(s): {len(seconds)} runs in {wall:.1f} s (runs themselves {sum(seconds):.1f} s); "
          f"overhead {overhead:.2f} s a run")
    return {"engine": engine, "workers": workers, "runs": len(seconds), "wall_s": wall, "run_s": sum(seconds),
            "overhead_per_run_s": overhead}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", default=["local", "ray"])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "sweep_throughput.json"))
    args = parser.parse_args()
    rows = [_one(engine, workers) for engine in args.engines for workers in (1, 2)]
    speedups = {engine: next(r["wall_s"] for r in rows if r["engine"] == engine and r["workers"] == 1)
                / next(r["wall_s"] for r in rows if r["engine"] == engine and r["workers"] == 2)
                for engine in args.engines}
    for engine, ratio in speedups.items():
        print(f"{engine}: 2 workers {ratio:.2f}x faster than 1 (target >= 1.7)")
    write_record(args.out, {"kind": "benchmark", "name": "sweep_throughput", "rows": rows, "speedup": speedups,
                            "target_speedup": 1.7, "target_overhead_s": 2.0, "provenance": provenance("cpu")},
                 overwrite=True)


if __name__ == "__main__":
    main()
