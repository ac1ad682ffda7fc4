"""The book's machinery: chapter runs, claims and verdicts, tables, the paper's numbers, costs, reproduce,
the Colab setup."""
