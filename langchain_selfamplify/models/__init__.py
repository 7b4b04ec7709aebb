"""Model backend: :class:`SLM` and the embedded default model."""

from langchain_selfamplify.models.default import DEFAULT_MODEL_NAME, default_model_path
from langchain_selfamplify.models.slm import ANSWER_PREFIX, SLM, ChoiceScores

__all__ = ["ANSWER_PREFIX", "DEFAULT_MODEL_NAME", "SLM", "ChoiceScores", "default_model_path"]
