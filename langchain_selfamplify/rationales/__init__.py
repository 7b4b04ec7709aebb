"""Rationales: post hoc explanations of the selected examples (Self-AMPLIFY step 2).

Importing this package registers every built-in method.
"""

from langchain_selfamplify.rationales.base import METHODS, RationaleMethod, get_method
from langchain_selfamplify.rationales.deeplift import DeepLiftRationale
from langchain_selfamplify.rationales.generator import RationaleGenerator
from langchain_selfamplify.rationales.kernelshap import KernelShapRationale
from langchain_selfamplify.rationales.ph_cot import PhCoTRationale
from langchain_selfamplify.rationales.self_topk import SelfTopKRationale
from langchain_selfamplify.rationales.words import WordAttribution, keyword_rationale

__all__ = [
    "METHODS",
    "DeepLiftRationale",
    "KernelShapRationale",
    "PhCoTRationale",
    "RationaleGenerator",
    "RationaleMethod",
    "SelfTopKRationale",
    "WordAttribution",
    "get_method",
    "keyword_rationale",
]
