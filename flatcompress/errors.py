"""Errors that carry a message a user can act on."""

from __future__ import annotations

__all__ = ["DataFormatError", "DataSourceError", "HubUnavailableError", "MissingRecordError", "NonFiniteLossError",
           "RecordExistsError", "UntrainedModelWarning"]


class DataSourceError(RuntimeError):
    """The requested data (or model) source cannot provide the task."""


class HubUnavailableError(DataSourceError, ConnectionError):
    """The Hugging Face hub cannot be reached; the message names offline alternatives."""


class DataFormatError(ValueError):
    """A data file is malformed; the message names the file and the line."""


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the message names the step."""


class RecordExistsError(FileExistsError):
    """A result record already exists and overwriting it was not asked for."""


class MissingRecordError(FileNotFoundError):
    """A result was asked for without permission to compute it, and its record does not exist."""


class UntrainedModelWarning(UserWarning):
    """A fine-tuned model did not clear the health gate (`flatcompress.stats.health`): its dev score is within two
    standard errors of its floor, or it predicts one class. The message names the run, the reason and its record."""
