"""Exception types for errors a user can cause.

Every error that bad input can raise derives from :class:`DevnasError`, so callers can catch
ours apart from bugs. Each also derives from the built-in type a Python user would expect
(``ValueError`` for bad values, ``FileNotFoundError`` for a missing data folder).
"""

from __future__ import annotations


class DevnasError(Exception):
    """Base class of the errors raised by optuna-devnas for bad input."""


class InvalidArchitectureError(DevnasError, ValueError):
    """An architecture, or a layer name in it, is not part of the search space."""


class InputShapeError(DevnasError, ValueError):
    """A tensor or an input shape does not fit the network it is given to."""


class DataNotFoundError(DevnasError, FileNotFoundError):
    """A data set folder is missing or incomplete (data sets are never downloaded)."""
