"""Baselines: the Self-AMPLIFY paper's (IO prompting, Auto-CoT, AMPLIFY) and DSPy's
few-shot optimisers (BootstrapFewShot, LabeledFewShot; the ``[dspy]`` extra)."""

from langchain_selfamplify.baselines.amplify import Amplify, amplify_rationale
from langchain_selfamplify.baselines.auto_cot import AutoCoT
from langchain_selfamplify.baselines.dspy_bootstrap import DSPY_METHODS, DSPyBaseline
from langchain_selfamplify.baselines.io import io_prompt

BASELINES = {"io": "random", "auto_cot": "clusters", "amplify": "proxy_mcs", **DSPY_METHODS}
"""Baseline methods and the fixed selection each uses (the grid's strategy column)."""

__all__ = ["BASELINES", "DSPY_METHODS", "Amplify", "AutoCoT", "DSPyBaseline",
           "amplify_rationale", "io_prompt"]
