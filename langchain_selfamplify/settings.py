"""The settings ``selfamplify run`` and ``selfamplify evaluate`` share, in one model.

:class:`~langchain_selfamplify.pipeline.RunConfig` (one run) and
:class:`~langchain_selfamplify.evaluation.grid_config.GridConfig` (a grid of runs) both derive
from :class:`AmplifySettings`: how demonstrations are selected and explained, how many
questions are asked and how answers are read. Each adds only what is its own (a run's
one model, dataset, method and seed; a grid's lists of them).
"""

from __future__ import annotations

from pydantic import Field

from langchain_selfamplify.strict import StrictModel
from langchain_selfamplify.wording import AnswerFormat


class AmplifySettings(StrictModel):
    """How a prompt is amplified and evaluated, for a run or a grid."""

    data_dir: str | None = None
    """Local directory of the registered datasets (else ``$SELFAMPLIFY_DATA_DIR``, else
    the Hub)."""
    shots: int = Field(default=8, ge=1)
    """Demonstrations per prompt. Defaults to 8."""
    k: int = Field(default=5, ge=1)
    """Keywords per keyword rationale. Defaults to 5."""
    steps: int = Field(default=3, ge=1)
    """Steps per Ph-CoT rationale. Defaults to 3."""
    pool_size: int | None = Field(default=None, ge=1)
    """Cap on the selection pool (a seeded sample); ``None`` for the whole split."""
    test_size: int | None = Field(default=None, ge=1)
    """Test questions; ``None`` for all of them."""
    max_rationale_tokens: int = Field(default=64, ge=1)
    """Least token cap of test-time rationales (raised to the longest demonstration
    rationale + 16; see ``rationale_cap``). Defaults to 64."""
    answer_format: AnswerFormat = "letter"
    """``"letter"`` (labels scored after "The answer is (") or ``"cloze"`` (choice texts
    scored after "The answer is:", length-normalised)."""
    balance_labels: bool = False
    """Spread the demonstrations' gold labels evenly (in a grid: the IO, AMPLIFY and
    Self-AMPLIFY rows; Auto-CoT's answers are the model's own)."""
    output_dir: str = "selfamplify_output"
    """Where the outputs and checkpoints go."""
