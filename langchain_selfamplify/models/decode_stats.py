"""Counts of the passes a decoding run makes: what a speed benchmark reads to tell
decoding steps from prompt encodings and follow-up feeds, and what a step costs at each
number of rows decoded together."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DecodeStats:
    """Counts of the passes of :func:`greedy_decode_shared_prefix`, summed over calls
    (``ModelCore.decode_stats``; reset with :meth:`reset`)."""

    prefills: int = 0
    """Passes that encoded new prompts' own tokens."""
    follow_up_passes: int = 0
    """Passes that fed finished replies' follow-ups."""
    follow_up_tokens: int = 0
    """Follow-up tokens fed (not already in a reply's cache), over all rows."""
    step_seconds: dict[int, float] = field(default_factory=dict)
    """Wall seconds of the decoding steps, by the number of rows a step decoded."""
    steps_by_rows: dict[int, int] = field(default_factory=dict)
    """Decoding steps, by the number of rows a step decoded."""

    @property
    def steps(self) -> int:
        """Decoding steps: one token per slot."""
        return sum(self.steps_by_rows.values())

    def record_step(self, rows: int, seconds: float) -> None:
        """Count one decoding step of ``rows`` rows that took ``seconds``."""
        self.step_seconds[rows] = self.step_seconds.get(rows, 0.0) + seconds
        self.steps_by_rows[rows] = self.steps_by_rows.get(rows, 0) + 1

    def seconds_per_step(self, rows: int) -> float | None:
        """Mean seconds of a step of ``rows`` rows; ``None`` if none ran."""
        steps = self.steps_by_rows.get(rows, 0)
        return self.step_seconds[rows] / steps if steps else None

    def reset(self) -> None:
        """Set every count back to zero."""
        self.prefills = self.follow_up_passes = self.follow_up_tokens = 0
        self.step_seconds.clear()
        self.steps_by_rows.clear()
