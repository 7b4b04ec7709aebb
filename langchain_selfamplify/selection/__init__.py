"""Selection: choose demonstrations from the SLM's own predictions (Self-AMPLIFY step 1)."""

from langchain_selfamplify.selection.balance import balance_labels
from langchain_selfamplify.selection.selector import SelfAmplifySelector
from langchain_selfamplify.selection.strategies import STRATEGIES, ScoredExample

__all__ = ["STRATEGIES", "ScoredExample", "SelfAmplifySelector", "balance_labels"]
