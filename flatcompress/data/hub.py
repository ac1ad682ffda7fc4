"""The Hugging Face hub source (`nyu-mll/glue`, `rajpurkar/squad`), failing fast when offline.

`datasets` retries an unreachable hub for about 50 s before it gives up. We first try a
3-second TCP connection to the endpoint; if that fails (or `HF_HUB_OFFLINE` is set and the
dataset is not cached) the error says so at once and names the offline alternatives.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

from flatcompress.data.examples import Example, QAExample
from flatcompress.errors import HubUnavailableError
from flatcompress.tasks import TASKS, Task

__all__ = ["hub_reachable", "read_hub", "offline_alternatives"]

# Hub column names (text_a, text_b) per GLUE config; labels are already integers in our order.
_COLUMNS = {
    "mnli": ("premise", "hypothesis"), "qqp": ("question1", "question2"), "stsb": ("sentence1", "sentence2"),
    "qnli": ("question", "sentence"), "mrpc": ("sentence1", "sentence2"), "rte": ("sentence1", "sentence2"),
    "sst2": ("sentence", None), "cola": ("sentence", None),
}


def _offline_flag() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def hub_reachable(timeout: float = 3.0) -> str | None:
    """None if the hub endpoint accepts a TCP connection within `timeout` s, else the reason it does not."""
    if _offline_flag():
        return "HF_HUB_OFFLINE is set"
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"cannot connect to {url.hostname}:{port} ({exc})"


def offline_alternatives(task: Task) -> str:
    bundled = ", ".join(n for n, t in TASKS.items() if t.bundled)
    return (f"use a local glue_data/ directory that contains {task.glue_dir}/ (--data-dir or the "
            f"FLATCOMPRESS_GLUE_DIR environment variable, source 'glue_dir'), or a bundled offline task ({bundled})")


def read_hub(task: Task) -> dict[str, list]:
    """Every split of the task from the hub (or from the local `datasets` cache when offline)."""
    reason = hub_reachable()
    if reason and not _offline_flag():
        raise HubUnavailableError(f"the Hugging Face hub is unreachable: {reason}. To run {task.title}, "
                                  f"{offline_alternatives(task)}.")
    import datasets  # heavy import, only on this path

    dataset_id, config = task.hub  # type: ignore[misc]
    try:
        dsd = datasets.load_dataset(dataset_id, config)
    except Exception as exc:  # datasets raises several types for "not cached and offline"
        raise HubUnavailableError(f"could not load {dataset_id}/{config} from the hub ({reason or 'download failed'}: "
                                  f"{type(exc).__name__}). To run {task.title}, {offline_alternatives(task)}.") from exc
    splits = {}
    for split in ("train", *task.eval_splits):
        rows = dsd[split]
        if task.kind == "qa":
            splits[split] = [QAExample(r["id"], r["question"], r["context"], tuple(r["answers"]["text"]),
                                       tuple(r["answers"]["answer_start"])) for r in rows]
        else:
            a, b = _COLUMNS[task.name]
            splits[split] = [Example(r[a], r[b] if b else None,
                                     float(r["label"]) if task.kind == "regression" else int(r["label"]))
                             for r in rows]
    return splits
