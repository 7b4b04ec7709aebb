"""Prompt building: the layout of demonstrations and the :class:`AmplifiedPrompt`."""

from langchain_selfamplify.prompting.amplified import AmplifiedPrompt
from langchain_selfamplify.prompting.messages import (
    answer_turn,
    few_shot_messages,
    question_text,
)

__all__ = ["AmplifiedPrompt", "answer_turn", "few_shot_messages", "question_text"]
