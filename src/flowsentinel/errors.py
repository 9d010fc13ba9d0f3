"""Every error that flowsentinel reports to its user, in one place.

:class:`FlowsentinelError` is the base of the errors caused by what the
user gave (a file, a setting, a model directory, an interface) or by the
environment (a full disk, a closed pipe). The command line prints such an
error as one line and exits with :attr:`FlowsentinelError.exit_status` (2);
anything else is a bug and shows its traceback (exit 1).

Most classes also derive from ``ValueError`` so that library callers who
catch the built-in type keep working.

>>> issubclass(FlowReadError, FlowsentinelError), issubclass(FlowReadError, ValueError)
(True, True)
>>> str(ModelIntegrityError("m/weights.safetensors: digest mismatch"))
'm/weights.safetensors: digest mismatch'
"""

from __future__ import annotations

__all__ = [
    "FlowsentinelError",
    "UsageError",
    "ConfigError",
    "SchemaError",
    "TaxonomyError",
    "FlowReadError",
    "MissingColumnsError",
    "DataError",
    "ModelLoadError",
    "ModelIntegrityError",
    "MeterError",
    "OutputError",
    "OutputClosedError",
    "ServiceError",
    "NotFittedError",
]


class FlowsentinelError(Exception):
    """Base of every error the user can fix: the CLI prints it as one line and exits 2."""

    #: Exit status of the command line for this error.
    exit_status: int = 2


class UsageError(FlowsentinelError, ValueError):
    """The command line asks for something impossible or contradictory."""


class ConfigError(FlowsentinelError, ValueError):
    """A configuration file, override or parameter value is invalid."""


class SchemaError(FlowsentinelError, ValueError):
    """A flow table does not match any known NetFlow schema."""


class TaxonomyError(FlowsentinelError, ValueError):
    """An attack name that the class taxonomy does not know, or a broken taxonomy file."""


class FlowReadError(FlowsentinelError, ValueError):
    """A flow file cannot be read (missing, unreadable, wrong schema, stopped part-way)."""


class MissingColumnsError(FlowsentinelError, ValueError):
    """A flow table lacks columns that a fitted pipeline or model needs."""


class DataError(FlowsentinelError, ValueError):
    """Data that can be read but not used for the job asked (too few flows, one class only)."""


class ModelLoadError(FlowsentinelError, ValueError):
    """A model directory is missing, incomplete, damaged or from an unknown format."""


class ModelIntegrityError(ModelLoadError):
    """A model directory's files or decision fields do not match the digests in its manifest."""


class MeterError(FlowsentinelError, ValueError):
    """A capture or interface cannot be metered; the message names it and says why."""


class OutputError(FlowsentinelError, OSError):
    """An output cannot be written (not a regular file, disk full, read-only, closed pipe)."""


class OutputClosedError(OutputError):
    """The reader of the output went away (a closed pipe, as in ``| head -1``): exit 141, as if stopped by SIGPIPE."""

    exit_status = 141


class ServiceError(FlowsentinelError):
    """A flowsentinel service refused a request or could not be reached; the message says which and why."""


class NotFittedError(RuntimeError):
    """A detector was used before ``fit`` (or loading): a programming error, not the user's."""
