"""The paper's numbers as data: Tables 1-8 of Na, Mehta & Strubell (2022), the single source for every
paper-vs-ours comparison, plot band and verdict in the book.

Each cell is `(mean, std)` over the paper's 3 seeds (`std` is None where the paper gives none) or None
where the paper reports nothing. Scores are in percent as printed (accuracy, F1, Matthews and Pearson
correlation x 100); sharpness is the paper's phi (already x 100). Rows are keyed by tuples such as
`("IMP", "SAM")` or `("5e-3", "Adam")`, columns by task name (`mnli_mm` is MNLI mismatched).
Transcribed from the camera-ready text (figures are images and are not here); see
`tests/test_paper.py` for the cells checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from flatcompress.tasks import TASKS

__all__ = ["PaperTable", "TABLES", "paper_value", "REFERENCE_SPARSITY"]

Cell = Optional[tuple[float, Optional[float]]]


@dataclass(frozen=True)
class PaperTable:
    """One table of the paper: which evaluation split it reports and its rows of per-task cells."""

    id: str
    caption: str
    split: str
    rows: dict[tuple[str, ...], dict[str, Cell]]
    metrics: dict[str, str] = field(default_factory=dict)  # tasks reported in another metric than their main one

    def metric(self, task: str) -> str:
        """The metric this table reports for `task` (its main metric unless the table says otherwise)."""
        return self.metrics.get(task) or TASKS[task].main_metric


TABLES: dict[str, PaperTable] = {
    "table1": PaperTable(
        "table1", "GLUE test (SQuAD dev), BERT-base, full size and at the reference sparsities; IMP = with rewinding, Std = standard pruning", "test",
        {
            ('Full', 'Adam'): {'mnli': (84.6, 0.1), 'mnli_mm': (83.6, 0.3), 'qqp': (89.1, 0.1), 'stsb': (84.0, 0.4), 'qnli': (90.8, 0.2), 'mrpc': (82.6, 1.4), 'rte': (67.0, 1.4), 'sst2': (93.2, 0.6), 'cola': (53.3, 1.2), 'squad': (88.5, 0.2)},
            ('Full', 'SAM'): {'mnli': (85.0, 0.1), 'mnli_mm': (84.5, 0.1), 'qqp': (89.2, 0.2), 'stsb': (84.7, 0.1), 'qnli': (90.8, 0.4), 'mrpc': (82.9, 1.3), 'rte': (65.5, 0.8), 'sst2': (93.6, 0.1), 'cola': (54.1, 1.3), 'squad': (89.2, 0.1)},
            ('IMP', 'Adam'): {'mnli': (82.3, 0.3), 'mnli_mm': (81.4, 0.2), 'qqp': (83.0, 0.0), 'stsb': (83.3, 0.3), 'qnli': (88.6, 0.3), 'mrpc': (81.5, 1.3), 'rte': (63.3, 2.8), 'sst2': (92.2, 0.4), 'cola': (47.7, 1.5), 'squad': (86.9, 0.3)},
            ('IMP', 'SAM'): {'mnli': (83.2, 0.2), 'mnli_mm': (82.5, 0.4), 'qqp': (85.4, 0.1), 'stsb': (84.1, 0.1), 'qnli': (89.4, 0.2), 'mrpc': (83.6, 0.2), 'rte': (65.0, 1.5), 'sst2': (92.9, 0.5), 'cola': (49.5, 2.0), 'squad': (87.8, 0.2)},
            ('IMP', 'SWA'): {'mnli': (83.1, 0.1), 'mnli_mm': (82.1, 0.1), 'qqp': (87.7, 0.2), 'stsb': (85.3, 0.4), 'qnli': (89.0, 0.2), 'mrpc': (83.7, 0.1), 'rte': (67.4, 0.4), 'sst2': (92.7, 0.3), 'cola': (50.9, 1.0), 'squad': None},
            ('Std', 'Adam'): {'mnli': (82.4, 0.3), 'mnli_mm': (81.1, 0.5), 'qqp': (87.2, 0.1), 'stsb': (83.9, 0.1), 'qnli': (88.8, 0.1), 'mrpc': (82.9, 1.0), 'rte': (64.4, 1.6), 'sst2': (92.3, 0.2), 'cola': (50.9, 0.2), 'squad': (86.3, 0.2)},
            ('Std', 'SAM'): {'mnli': (83.2, 0.1), 'mnli_mm': (81.8, 0.1), 'qqp': (87.4, 0.4), 'stsb': (84.6, 0.1), 'qnli': (89.4, 0.1), 'mrpc': (81.9, 1.2), 'rte': (64.3, 0.8), 'sst2': (93.0, 0.6), 'cola': (51.3, 2.0), 'squad': (87.1, 0.2)},
        },
    ),
    "table5": PaperTable(
        "table5", "dev set, full fine-tuning and at the reference sparsities, with Chen et al. 2020 (Ref)", "dev",
        {
            ('Full FT', 'Ref'): {'mnli': (82.4, 0.5), 'qqp': (90.2, 0.5), 'stsb': (88.4, 0.3), 'qnli': (89.1, 1.0), 'mrpc': (85.2, 0.1), 'rte': (66.2, 3.6), 'sst2': (92.1, 0.1), 'cola': (54.5, 0.4), 'squad': (88.1, 0.6)},
            ('Full FT', 'Adam'): {'mnli': (84.7, 0.4), 'qqp': (91.0, 0.1), 'stsb': (89.0, 0.1), 'qnli': (91.5, 0.1), 'mrpc': (85.5, 1.7), 'rte': (67.6, 1.5), 'sst2': (92.7, 0.1), 'cola': (58.1, 0.4), 'squad': (88.5, 0.2)},
            ('Full FT', 'SAM'): {'mnli': (85.3, 0.2), 'qqp': (91.1, 0.1), 'stsb': (89.4, 0.2), 'qnli': (91.3, 0.6), 'mrpc': (87.0, 0.7), 'rte': (67.0, 0.8), 'sst2': (93.1, 0.6), 'cola': (59.5, 0.4), 'squad': (89.2, 0.1)},
            ('IMP', 'Ref'): {'mnli': (82.6, 0.2), 'qqp': (90.0, 0.2), 'stsb': (88.2, 0.2), 'qnli': (88.9, 0.4), 'mrpc': (84.9, 0.4), 'rte': (66.0, 2.4), 'sst2': (91.9, 0.5), 'cola': (53.8, 0.9), 'squad': (87.7, 0.5)},
            ('IMP', 'Adam'): {'mnli': (82.6, 0.3), 'qqp': (85.0, 0.2), 'stsb': (88.3, 0.2), 'qnli': (88.6, 0.1), 'mrpc': (84.2, 0.1), 'rte': (63.7, 0.9), 'sst2': (91.7, 0.4), 'cola': (56.4, 1.4), 'squad': (86.9, 0.3)},
            ('IMP', 'SAM'): {'mnli': (83.5, 0.1), 'qqp': (84.9, 0.1), 'stsb': (88.9, 0.2), 'qnli': (89.6, 0.1), 'mrpc': (85.8, 1.0), 'rte': (71.8, 1.7), 'sst2': (93.2, 0.4), 'cola': (56.1, 0.9), 'squad': (87.8, 0.2)},
            ('±10%', 'Adam'): {'mnli': (82.1, 0.3), 'qqp': (87.2, 0.3), 'stsb': (88.3, 0.2), 'qnli': (88.0, 0.2), 'mrpc': (83.7, 0.4), 'rte': (64.2, 0.2), 'sst2': (91.5, 0.5), 'cola': (55.0, 0.4), 'squad': (86.8, 0.4)},
            ('±10%', 'SAM'): {'mnli': (83.1, 0.1), 'qqp': (87.4, 0.4), 'stsb': (88.8, 0.2), 'qnli': (89.1, 0.2), 'mrpc': (85.5, 0.5), 'rte': (68.9, 0.4), 'sst2': (92.9, 0.3), 'cola': (56.1, 0.2), 'squad': (88.3, 0.5)},
            ('Std', 'Ref'): {'mnli': (82.1, None), 'qqp': (90.0, None), 'stsb': (88.5, None), 'qnli': (89.9, None), 'mrpc': (85.8, None), 'rte': (63.0, None), 'sst2': (90.0, None), 'cola': (52.0, None), 'squad': (87.1, None)},
            ('Std', 'Adam'): {'mnli': (82.7, None), 'qqp': (88.1, None), 'stsb': (89.2, None), 'qnli': (89.5, None), 'mrpc': (85.5, None), 'rte': (65.3, None), 'sst2': (91.1, None), 'cola': (54.2, None), 'squad': (86.3, 0.2)},
            ('Std', 'SAM'): {'mnli': (83.3, None), 'qqp': (89.6, None), 'stsb': (89.6, None), 'qnli': (90.0, None), 'mrpc': (85.3, None), 'rte': (68.2, None), 'sst2': (92.1, None), 'cola': (56.8, None), 'squad': (87.1, 0.2)},
        },
    ),
    "table6": PaperTable(
        "table6", "mask x optimizer at the reference sparsity (rows: mask, fine-tuning optimizer)", "dev",
        {
            ('Random', 'Adam'): {'rte': (54.9, 1.3), 'mrpc': (70.8, 0.8), 'sst2': (82.8, 0.2), 'qnli': (61.7, 0.3)},
            ('Random', 'SAM'): {'rte': (55.4, 1.6), 'mrpc': (70.1, 0.2), 'sst2': (83.3, 0.8), 'qnli': (61.5, 0.1)},
            ('Adam', 'Adam'): {'rte': (63.7, 0.9), 'mrpc': (84.2, 0.1), 'sst2': (91.9, 0.3), 'qnli': (89.0, 0.05)},
            ('Adam', 'SAM'): {'rte': (61.7, 2.4), 'mrpc': (85.3, 0.5), 'sst2': (92.7, 0.1), 'qnli': (89.5, 0.04)},
            ('SAM', 'Adam'): {'rte': (70.2, 1.9), 'mrpc': (85.3, 1.3), 'sst2': (92.4, 0.1), 'qnli': (89.1, 0.1)},
            ('SAM', 'SAM'): {'rte': (71.8, 1.7), 'mrpc': (85.7, 0.8), 'sst2': (92.9, 0.2), 'qnli': (89.6, 0.2)},
        },
    ),
    "table2": PaperTable(
        "table2", "CoFi structured pruning to 95% sparsity: teacher and pruned-student dev accuracy, Adam vs SAM teacher", "dev",
        {
            ('teacher', 'Adam'): {'sst2': (92.7, 0.1), 'qnli': (91.5, 0.1), 'qqp': (91.0, 0.1), 'mnli': (84.7, 0.4)},
            ('pruned', 'Adam'): {'sst2': (90.2, 0.5), 'qnli': (85.9, 0.4), 'qqp': (90.0, 0.1), 'mnli': (80.2, 0.4)},
            ('teacher', 'SAM'): {'sst2': (93.1, 0.6), 'qnli': (91.3, 0.6), 'qqp': (91.1, 0.1), 'mnli': (85.3, 0.2)},
            ('pruned', 'SAM'): {'sst2': (91.3, 0.3), 'qnli': (86.9, 0.4), 'qqp': (90.1, 0.1), 'mnli': (80.6, 0.1)},
        },
    ),
    "table7": PaperTable(
        "table7", "CoFi hyperparameter reproduction with Adam teachers, 95% sparsity", "dev",
        {
            ('teacher', 'Ref'): {'sst2': (93.1, None), 'qnli': (91.5, None), 'qqp': (91.2, None), 'mnli': (84.8, None)},
            ('pruned', 'Ref'): {'sst2': (90.6, None), 'qnli': (86.1, None), 'qqp': (90.1, None), 'mnli': (80.6, None)},
            ('teacher', 'Reprod'): {'sst2': (93.6, None), 'qnli': (91.9, None), 'qqp': (91.3, None), 'mnli': (85.2, None)},
            ('pruned', 'Reprod'): {'sst2': (90.6, None), 'qnli': (86.5, None), 'qqp': (89.9, None), 'mnli': (80.1, None)},
            ('lambda', 'Reprod'): {'sst2': (0.9, None), 'qnli': (0.9, None), 'qqp': (0.7, None), 'mnli': (0.7, None)},
            ('ft_lr', 'Reprod'): {'sst2': (3e-05, None), 'qnli': (3e-05, None), 'qqp': (3e-05, None), 'mnli': (3e-05, None)},
        },
    ),
    "table8": PaperTable(
        "table8", "int8 post-training dynamic quantization; QQP and MRPC are F1 here (rows: precision, optimizer)", "dev",
        {
            ('QAT', 'Ref'): {'mnli': None, 'qqp': (87.96, None), 'stsb': (89.04, None), 'qnli': (90.62, None), 'mrpc': (89.56, None), 'rte': (68.78, None), 'sst2': (92.24, None), 'cola': (58.48, None), 'squad': (87.74, None)},
            ('full', 'Adam'): {'mnli': (84.42, 0.37), 'qqp': (87.98, 0.12), 'stsb': (89.06, 0.11), 'qnli': (91.49, 0.09), 'mrpc': (89.57, 1.13), 'rte': (67.63, 1.1), 'sst2': (92.7, 0.07), 'cola': (60.47, 0.55), 'squad': (89.2, 0.12)},
            ('int8', 'Adam'): {'mnli': (78.24, 4.0), 'qqp': (85.35, 1.93), 'stsb': (86.54, 1.07), 'qnli': (89.05, 0.37), 'mrpc': (86.81, 1.72), 'rte': (56.8, 4.51), 'sst2': (91.17, 0.9), 'cola': (55.99, 2.86), 'squad': (80.13, 1.85)},
            ('full', 'SAM'): {'mnli': (84.68, 0.13), 'qqp': (88.2, 0.08), 'stsb': (89.39, 0.07), 'qnli': (91.33, 0.58), 'mrpc': (91.24, 0.2), 'rte': (67.87, 0.36), 'sst2': (93.08, 0.57), 'cola': (59.09, 0.72), 'squad': (89.2, 0.12)},
            ('int8', 'SAM'): {'mnli': (83.47, 0.11), 'qqp': (86.85, 0.28), 'stsb': (87.16, 0.76), 'qnli': (89.83, 0.54), 'mrpc': (89.37, 0.83), 'rte': (65.7, 1.65), 'sst2': (92.39, 0.4), 'cola': (54.88, 0.78), 'squad': (84.92, 0.55)},
        },
        metrics={"qqp": "f1", "mrpc": "f1", "squad": "squad_f1"},  # F1 to match Q8BERT
    ),
    "table3": PaperTable(
        "table3", "epsilon-sharpness at full size (rows: epsilon, optimizer)", "dev",
        {
            ('5e-3', 'Adam'): {'mnli': (28.3, 3.6), 'qqp': (34.7, 5.0), 'stsb': (160.9, 34.3), 'qnli': (30.1, 6.0), 'mrpc': (50.8, 24.8), 'rte': (49.0, 5.6), 'sst2': (29.9, 10.3), 'cola': (38.3, 3.7)},
            ('5e-3', 'SAM'): {'mnli': (14.2, 0.9), 'qqp': (9.3, 1.7), 'stsb': (45.8, 1.3), 'qnli': (17.8, 3.4), 'mrpc': (40.4, 5.3), 'rte': (28.4, 8.7), 'sst2': (13.7, 2.3), 'cola': (29.4, 9.8)},
            ('1e-3', 'Adam'): {'mnli': (5.0, 0.6), 'qqp': (6.5, 0.9), 'stsb': (11.8, 3.1), 'qnli': (6.6, 2.5), 'mrpc': (6.1, 1.0), 'rte': (11.9, 3.0), 'sst2': (4.5, 0.6), 'cola': (9.5, 2.2)},
            ('1e-3', 'SAM'): {'mnli': (2.6, 0.2), 'qqp': (1.9, 0.3), 'stsb': (4.5, 0.4), 'qnli': (3.5, 1.3), 'mrpc': (7.0, 0.7), 'rte': (4.3, 2.4), 'sst2': (2.2, 0.1), 'cola': (6.8, 2.8)},
            ('5e-4', 'Adam'): {'mnli': (2.3, 0.2), 'qqp': (3.4, 0.2), 'stsb': (4.3, 1.2), 'qnli': (3.2, 1.5), 'mrpc': (2.8, 0.3), 'rte': (6.5, 2.1), 'sst2': (2.3, 0.4), 'cola': (5.6, 2.0)},
            ('5e-4', 'SAM'): {'mnli': (1.3, 0.1), 'qqp': (0.9, 0.1), 'stsb': (1.9, 0.3), 'qnli': (1.5, 0.3), 'mrpc': (3.2, 0.6), 'rte': (2.1, 1.1), 'sst2': (1.0, 0.1), 'cola': (3.4, 1.4)},
        },
    ),
    "table4": PaperTable(
        "table4", "epsilon-sharpness at the reference sparsities after IMP (rows: epsilon, optimizer)", "dev",
        {
            ('5e-3', 'Adam'): {'mnli': (56.4, 1.0), 'qqp': (137.9, 40.4), 'stsb': (232.5, 30.0), 'qnli': (23.8, 3.9), 'mrpc': (42.3, 26.9), 'rte': (65.7, 8.8), 'sst2': (85.8, 33.8), 'cola': (33.8, 2.7)},
            ('5e-3', 'SAM'): {'mnli': (42.4, 7.9), 'qqp': (65.3, 1.9), 'stsb': (184.0, 7.3), 'qnli': (17.2, 6.0), 'mrpc': (47.3, 18.0), 'rte': (50.8, 6.1), 'sst2': (26.9, 7.7), 'cola': (23.9, 4.5)},
            ('5e-3', 'SWA'): {'mnli': (37.3, 9.9), 'qqp': (34.7, 1.2), 'stsb': (81.3, 22.3), 'qnli': (33.5, 7.5), 'mrpc': (31.6, 6.6), 'rte': (42.1, 12.3), 'sst2': (23.7, 10.3), 'cola': (26.5, 9.5)},
            ('1e-3', 'Adam'): {'mnli': (6.6, 0.9), 'qqp': (5.8, 1.0), 'stsb': (20.2, 6.1), 'qnli': (5.9, 2.2), 'mrpc': (8.6, 2.2), 'rte': (16.4, 4.0), 'sst2': (5.8, 0.7), 'cola': (6.2, 1.4)},
            ('1e-3', 'SAM'): {'mnli': (3.1, 0.4), 'qqp': (5.4, 0.6), 'stsb': (13.8, 1.2), 'qnli': (3.2, 1.1), 'mrpc': (8.3, 1.6), 'rte': (12.0, 3.8), 'sst2': (4.1, 0.8), 'cola': (4.2, 0.3)},
            ('1e-3', 'SWA'): {'mnli': (10.7, 1.6), 'qqp': (5.2, 0.6), 'stsb': (5.4, 1.1), 'qnli': (8.9, 0.2), 'mrpc': (12.4, 0.8), 'rte': (11.8, 4.1), 'sst2': (5.2, 0.7), 'cola': (7.9, 2.2)},
            ('5e-4', 'Adam'): {'mnli': (3.3, 0.2), 'qqp': (2.3, 0.3), 'stsb': (7.1, 2.5), 'qnli': (2.1, 0.6), 'mrpc': (5.8, 0.5), 'rte': (7.9, 1.1), 'sst2': (3.6, 0.9), 'cola': (3.9, 0.6)},
            ('5e-4', 'SAM'): {'mnli': (1.1, 0.3), 'qqp': (2.0, 0.6), 'stsb': (5.1, 0.6), 'qnli': (1.2, 0.0), 'mrpc': (3.6, 0.6), 'rte': (5.9, 2.0), 'sst2': (1.9, 0.4), 'cola': (2.3, 0.4)},
            ('5e-4', 'SWA'): {'mnli': (4.4, 0.5), 'qqp': (2.9, 0.0), 'stsb': (2.2, 0.4), 'qnli': (4.7, 0.1), 'mrpc': (5.9, 0.7), 'rte': (6.0, 2.0), 'sst2': (2.5, 0.5), 'cola': (3.4, 0.2)},
        },
    ),
}

# Chen et al. (2020)'s winning-ticket sparsities, used throughout the paper (Table 1, 4 and 5 headers).
REFERENCE_SPARSITY: dict[str, float] = {n: t.reference_sparsity for n, t in TASKS.items() if t.reference_sparsity}


def paper_value(table: str, row: tuple[str, ...], task: str) -> Cell:
    """The paper's (mean, std) for `task` in `row` of `table`, e.g. `paper_value("table5", ("IMP", "SAM"), "rte")`."""
    if table not in TABLES:
        raise KeyError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
    rows = TABLES[table].rows
    if row not in rows:
        raise KeyError(f"{table} has no row {row!r}; rows: {list(rows)}")
    if task not in rows[row]:
        raise KeyError(f"{table} row {row!r} has no column {task!r}; columns: {list(rows[row])}")
    return rows[row][task]
