"""The package's exceptions: one root, one subclass per kind of problem.

Every error a user can cause derives from :class:`SelfAmplifyError`, so an app can
catch them all at once, and from the built-in exception it refines (``ValueError``,
``KeyError``...), so existing ``except ValueError`` blocks keep working.
"""

from __future__ import annotations

from collections.abc import Iterable


class SelfAmplifyError(Exception):
    """Root of every error raised by langchain-selfamplify."""


class DatasetError(SelfAmplifyError, ValueError):
    """A dataset file or row is malformed (the message names the file and row)."""


class UnknownNameError(SelfAmplifyError, ValueError):
    """An unknown dataset, method or strategy name; the message lists the known ones."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        super().__init__(f"Unknown {kind} {name!r}. Known {kind} names: {', '.join(self.known)}.")


class ModelLoadError(SelfAmplifyError, OSError):
    """A model could not be found or loaded (missing file, corrupt GGUF, no network)."""


class MissingDependencyError(SelfAmplifyError, ImportError):
    """An optional extra a step needs is not installed; the message names it."""


class ChatTemplateError(SelfAmplifyError, ValueError):
    """A chat-formatted prompt was required but the tokenizer has no chat template."""


class ContextLengthError(SelfAmplifyError, ValueError):
    """A prompt is longer than the model's context window."""


class SelectionError(SelfAmplifyError, ValueError):
    """The pool has fewer qualifying examples than requested."""


class RationaleError(SelfAmplifyError, RuntimeError):
    """A rationale could not be produced for an example."""


class PromptFileError(SelfAmplifyError, ValueError):
    """A saved amplified-prompt or results file is unreadable, corrupt or of a wrong version."""


class BackendCapabilityError(SelfAmplifyError, NotImplementedError):
    """A step needs something the model backend cannot compute (gradients from a served
    model, log-probabilities from a chat model); the message says what works instead."""


class BackendConnectionError(SelfAmplifyError, ConnectionError):
    """A served model could not be reached or kept failing after the retries; the message
    names the endpoint."""


class GridStoppedError(SelfAmplifyError):
    """A grid stopped on a failure of its environment (the model server unreachable, out
    of memory). Finished cells and answered questions are kept, and the stopped cell is
    not recorded as finished, so running the same command again resumes it.

    Args:
        cell: Key of the cell that was running.
        cause: The failure, or its description (from a Ray worker).
    """

    def __init__(self, cell: str, cause: BaseException | str) -> None:
        self.cell = cell
        self.reason = cause if isinstance(cause, str) else describe_transient(cause)
        super().__init__(f"the grid stopped in cell {cell}: {self.reason}. "
                         "Finished cells and questions are kept; run the same command again "
                         "to resume once the cause is fixed.")


HANDLED_FAILURES: tuple[type[BaseException], ...] = (
    SelfAmplifyError, ValueError, RuntimeError, ConnectionError, TimeoutError, MemoryError)
"""What a grid cell or a CLI command turns into a reported failure (see
:func:`is_transient` for which of them stop the work instead of failing it)."""

_OUT_OF_MEMORY = ("out of memory", "can't allocate memory", "cannot allocate memory",
                  "defaultcpuallocator")


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` is a failure of the environment, not of the method: the server
    unreachable or timing out after the client's retries, or memory exhausted. Such a
    failure stops a grid (to resume later) instead of failing its cell for good."""
    if isinstance(error, BackendConnectionError | ConnectionError | TimeoutError | MemoryError):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and any(sign in text for sign in _OUT_OF_MEMORY)


def describe_transient(error: BaseException) -> str:
    """A one-line cause: the endpoint's message, or the memory asked for."""
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, BackendConnectionError | ConnectionError | TimeoutError):
        return f"the model server failed: {text}"
    return f"out of memory: {text[:300]}"
