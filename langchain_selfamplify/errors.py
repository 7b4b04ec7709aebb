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
