"""Baselines of the Self-AMPLIFY paper: IO prompting, Auto-CoT and AMPLIFY."""

from langchain_selfamplify.baselines.amplify import Amplify, amplify_rationale
from langchain_selfamplify.baselines.auto_cot import AutoCoT
from langchain_selfamplify.baselines.io import io_prompt

BASELINES = {"io": "random", "auto_cot": "clusters", "amplify": "proxy_mcs"}
"""Baseline methods and the fixed selection each uses (the grid's strategy column)."""

__all__ = ["BASELINES", "Amplify", "AutoCoT", "amplify_rationale", "io_prompt"]
