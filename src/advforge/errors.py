"""Exceptions that the CLI turns into a one-line message and a nonzero exit."""


class AdvforgeError(Exception):
    """Base class for every error a user can cause (bad input, missing file, unknown name)."""


class InputError(AdvforgeError, ValueError):
    """A tensor, label, target or hyperparameter is malformed or out of range."""


class UnknownNameError(AdvforgeError, KeyError):
    """A dataset, model or attack name is not registered."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0])


class CheckpointError(AdvforgeError):
    """A checkpoint directory or file is missing, incomplete or corrupt."""


class DatasetNotFoundError(AdvforgeError, FileNotFoundError):
    """A dataset's files are not where we looked; the message says how to get them."""
