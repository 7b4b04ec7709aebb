"""Rationales: post hoc explanations of the selected examples (Self-AMPLIFY step 2).

Importing this package registers every method in ``rationales/methods/``.
"""

from langchain_selfamplify.rationales import methods as _methods  # noqa: F401 - registers
from langchain_selfamplify.rationales.attribution import AttributionMethod
from langchain_selfamplify.rationales.base import (
    METHODS,
    RationaleMethod,
    get_method,
    register_method,
)
from langchain_selfamplify.rationales.generator import RationaleGenerator
from langchain_selfamplify.rationales.gradient import GradientMethod
from langchain_selfamplify.rationales.perturbation import PerturbationMethod
from langchain_selfamplify.rationales.words import WordAttribution, keyword_rationale

__all__ = [
    "METHODS",
    "AttributionMethod",
    "GradientMethod",
    "PerturbationMethod",
    "RationaleGenerator",
    "RationaleMethod",
    "WordAttribution",
    "get_method",
    "keyword_rationale",
    "register_method",
]
