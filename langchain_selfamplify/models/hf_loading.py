"""Loading a local causal LM and its tokenizer, and checking a model option before any
long work. :meth:`SLM.from_pretrained` and the CLI call these.

A GGUF file is read once and kept converted (:mod:`.gguf_cache`); later loads of the same
file read the converted directory, which gives the same model much faster."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import torch

from langchain_selfamplify.errors import ModelLoadError
from langchain_selfamplify.models.embedded import (
    EMBEDDED_MODELS,
    default_model_path,
    embedded_model_path,
)
from langchain_selfamplify.models.gguf_cache import conversion_target, save_converted

logger = logging.getLogger(__name__)


def load_model_and_tokenizer(
    name_or_path: str | Path,
    *,
    gguf_file: str | None = None,
    device: str | None = None,
    device_map: str | dict[str, Any] | None = None,
    torch_dtype: torch.dtype | str | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
) -> tuple[Any, Any, str]:
    """The model, its tokenizer and a display name (see :meth:`SLM.from_pretrained`
    for the arguments).

    Raises:
        ModelLoadError: the model or tokenizer cannot be found or loaded.
    """
    source = Path(str(name_or_path)).expanduser()
    if source.suffix == ".gguf":
        check_gguf_file(source)
        gguf_file, location = source.name, str(source.parent)
    else:
        location = str(name_or_path)
        if gguf_file and source.is_dir():
            check_gguf_file(source / gguf_file)
    load_kwargs: dict[str, Any] = {"revision": revision,
                                   "trust_remote_code": trust_remote_code,
                                   "dtype": torch_dtype if torch_dtype is not None else "auto",
                                   "device_map": device_map}
    converted = (conversion_target(Path(location, gguf_file))
                 if gguf_file and revision is None else None)
    loaded = None
    if converted is not None and converted.is_dir():  # converted by an earlier load
        try:
            loaded = _load(str(converted), load_kwargs)
        except Exception as exc:  # noqa: BLE001 - a damaged cache is rebuilt, not fatal
            logger.warning("Converted model in %s unreadable (%s); reading the GGUF again.",
                           converted, exc)
            shutil.rmtree(converted, ignore_errors=True)
    if loaded is None:
        try:
            loaded = _load(location, {**load_kwargs, "gguf_file": gguf_file} if gguf_file
                           else load_kwargs)
        except Exception as exc:  # transformers raises OSError, ValueError, KeyError...
            hint = ""
            if not source.exists():
                hint = (" If the Hugging Face Hub is unreachable, pass a local directory or "
                        ".gguf file, or use SLM.from_default().")
            raise ModelLoadError(f"Could not load model {name_or_path!s}: {exc}.{hint}"
                                 ) from exc
        if converted is not None and device_map is None:
            save_converted(loaded[0], loaded[1], converted)
    model, tokenizer = loaded
    if device_map is None:
        target = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        model = model.to(target)  # type: ignore[arg-type]
    name = str(name_or_path) if not gguf_file else f"{location}/{gguf_file}"
    return model, tokenizer, name


def _load(location: str, load_kwargs: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer_kwargs = {key: value for key, value in load_kwargs.items()
                        if key not in {"dtype", "device_map"}}
    tokenizer = AutoTokenizer.from_pretrained(location, **tokenizer_kwargs)
    model = AutoModelForCausalLM.from_pretrained(location, **load_kwargs)
    return model, tokenizer


def check_model_source(model: str | None) -> None:
    """Fail before any long work when ``model`` cannot be loaded for a reason we can see
    without loading it: an unknown embedded model, an embedded model whose package is
    missing, or a local path (a ``.gguf`` file, or a path that looks local) that is not
    there. Hub ids are not checked (that needs the network).

    Raises:
        ModelLoadError: naming the problem.
    """
    import importlib.util

    from langchain_selfamplify.models.embedded import (
        DEFAULT_MODEL_PACKAGE,
        GEMMA_PACKAGE,
        QWEN_MODEL,
    )

    if model is None or model == "smollm2-135m":
        if importlib.util.find_spec(DEFAULT_MODEL_PACKAGE) is None:
            default_model_path()  # raises, saying what to install
        return
    if model == QWEN_MODEL:
        from langchain_selfamplify.models.assembled import QWEN_CODER_1_5B, part_paths

        part_paths(QWEN_CODER_1_5B)  # raises, naming the part to install
        return
    if model in EMBEDDED_MODELS:
        if importlib.util.find_spec(GEMMA_PACKAGE) is None:
            embedded_model_path(model)  # raises, saying what to install
        return
    path = Path(model).expanduser()
    if path.suffix == ".gguf":
        check_gguf_file(path)
    elif not path.exists() and (path.is_absolute() or model.startswith((".", "~"))
                                or model.count("/") > 1):
        raise ModelLoadError(f"Model directory not found: {path}")


def check_gguf_file(path: Path) -> None:
    """Fail early, and clearly, on a missing, truncated or non-GGUF file."""
    if not path.is_file():
        raise ModelLoadError(f"GGUF file not found: {path}")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != b"GGUF":
        raise ModelLoadError(f"{path} is not a GGUF file (its first bytes are {magic!r}).")
