"""Counts of the passes a decoding run makes: what a speed benchmark reads to tell
decoding steps from prompt encodings and follow-up feeds."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DecodeStats:
    """Counts of the passes of :func:`greedy_decode_shared_prefix`, summed over calls
    (``ModelCore.decode_stats``; reset with :meth:`reset`)."""

    steps: int = 0
    """Decoding steps: one token per slot."""
    prefills: int = 0
    """Passes that encoded new prompts' own tokens."""
    follow_up_passes: int = 0
    """Passes that fed finished replies' follow-ups."""
    follow_up_tokens: int = 0
    """Follow-up tokens fed (not already in a reply's cache), over all rows."""

    def reset(self) -> None:
        """Set every count back to zero."""
        self.steps = self.prefills = self.follow_up_passes = self.follow_up_tokens = 0
