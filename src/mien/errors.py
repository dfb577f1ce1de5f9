"""Errors a user can act on. The CLI prints them as one line and exits non-zero, never a traceback."""
from __future__ import annotations


class MienError(Exception):
    """A failure caused by the input or the environment, with a message that says what to do."""


class InputError(MienError):
    """The input (file, folder, stream, dataset) cannot be read as asked."""


class ModelError(MienError):
    """A model file is missing, corrupt, or does not match its card."""
