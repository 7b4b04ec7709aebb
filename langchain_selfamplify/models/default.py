"""Deprecated name of :mod:`langchain_selfamplify.models.embedded`
(renamed; this alias goes in the next release)."""

from langchain_selfamplify.deprecation import moved_module

__getattr__ = moved_module(__name__, "langchain_selfamplify.models.embedded")
