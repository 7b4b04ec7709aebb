"""A GGUF model converted once into a transformers directory, and loaded from there after.

transformers reads a GGUF file by parsing its metadata three times (config, tokenizer,
weights) and dequantising every tensor, at every load. On two cores that is about 24 s
for SmolLM2-135M and 70 s for Gemma 3 270M; a test suite or a grid that starts the model
in many processes pays it each time. The first load therefore writes what it produced
(the dequantised float32 tensors as safetensors shards, the config, the generation
config and the tokenizer) into the cache directory, and later loads read that directory
(0.5 s and 5 s for the same two models).

The directory holds exactly what the GGUF load produced: the same tensors bit for bit,
the same tokenizer (ids, special tokens, chat template) and the same generation config;
loading it in another dtype casts the same float32 tensors the GGUF load casts. The
tests check this on the embedded model.

The directory is named after the GGUF file's path, size and modification time and the
transformers version, so a changed file or library is converted again. It is written
to a temporary directory and renamed into place only when complete. Set
``SELFAMPLIFY_GGUF_CACHE=0`` to always read the GGUF itself.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from langchain_selfamplify.models.assembled import cache_dir

logger = logging.getLogger(__name__)

CONVERTED_CACHE_ENV = "SELFAMPLIFY_GGUF_CACHE"
"""Environment variable: ``0`` turns the converted-model cache off."""
CONVERSION_FORMAT = 1
"""Bumped when what a converted directory holds changes, so old ones are not read."""
SHARD_BYTES = 1 << 30
"""Largest safetensors shard. safetensors copies a file's tensors into memory to write
it, so shards bound that copy (a whole 1.5B model at once would be another 6 GiB)."""


def caching_enabled() -> bool:
    """Whether GGUF loads use the converted-model cache (``SELFAMPLIFY_GGUF_CACHE`` not
    ``0``)."""
    return os.environ.get(CONVERTED_CACHE_ENV, "1").strip().lower() not in {"0", "false", "no"}


def converted_dir(gguf: Path, root: Path | None = None) -> Path:
    """Where the converted form of ``gguf`` lives (whether or not it exists yet).

    Args:
        gguf: The GGUF file.
        root: The cache directory. Defaults to :func:`~.assembled.cache_dir`.
    """
    import transformers

    stat = gguf.stat()
    identity = (f"{CONVERSION_FORMAT}|{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|"
                f"{transformers.__version__}")
    key = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return (root or cache_dir()) / "converted" / f"{gguf.stem}-{key}"


def conversion_target(gguf: Path) -> Path | None:
    """Where ``gguf``'s conversion is read from or written to, or ``None`` when the cache
    is off or the file is not there."""
    return converted_dir(gguf) if caching_enabled() and gguf.is_file() else None


def existing_conversion(gguf: Path) -> Path | None:
    """The converted directory of ``gguf`` when the cache is on and an earlier load wrote
    it, else ``None`` (e.g. for reading only the tokenizer, as a served model does)."""
    converted = conversion_target(gguf)
    return converted if converted is not None and converted.is_dir() else None


def is_plain_float32(model: Any) -> bool:
    """Whether ``model`` holds ordinary float32 tensors: a GGUF loaded dequantised in
    float32, not one kept in packed GGUF blocks or already cast to another dtype."""
    state = model.state_dict()
    return bool(state) and all(t.dtype == torch.float32 for t in state.values())


def save_converted(model: Any, tokenizer: Any, target: Path) -> bool:
    """Write the loaded model and tokenizer to ``target``, atomically.

    Nothing is written, and ``False`` returned, when the model is not plain float32
    (see :func:`is_plain_float32`) or the disk lacks room; a failure to write is logged
    and leaves nothing behind, since the cache only saves time.

    Args:
        model: The model as loaded from the GGUF, before it is moved to a device.
        tokenizer: Its tokenizer.
        target: The directory from :func:`converted_dir`.
    """
    if not is_plain_float32(model):
        return False
    tensors = _unique_tensors(model.state_dict())
    size = sum(t.numel() * t.element_size() for t in tensors.values())
    target.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(target.parent).free
    if free < size + (1 << 28):
        logger.warning("Not caching the converted model: it needs %.2f GiB in %s, which has "
                       "%.2f GiB free.", size / 2**30, target.parent, free / 2**30)
        return False
    temporary = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.",
                                      suffix=".partial"))
    try:
        _write_shards(tensors, temporary)
        config = copy.deepcopy(model.config)
        if hasattr(config, "quantization_config"):  # the weights are no longer GGUF blocks
            del config.quantization_config
        config.save_pretrained(temporary)
        model.generation_config.save_pretrained(temporary)
        tokenizer.save_pretrained(temporary)
        os.replace(temporary, target)
    except Exception as exc:  # noqa: BLE001 - the cache only saves time; never fail a load
        if target.is_dir():  # another process finished the same conversion first
            return True
        logger.warning("Could not cache the converted model in %s: %s", target, exc)
        return False
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return True


def _unique_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict without the second name of a shared tensor (tied embeddings): the
    loader ties them again from the config, and safetensors refuses shared storage."""
    seen: set[tuple[int, int, tuple[int, ...]]] = set()
    unique = {}
    for name, tensor in state.items():
        identity = (tensor.untyped_storage().data_ptr(), int(tensor.storage_offset()),
                    tuple(tensor.shape))
        if identity not in seen:
            seen.add(identity)
            unique[name] = tensor
    return unique


def _write_shards(tensors: dict[str, torch.Tensor], directory: Path) -> None:
    """Safetensors shards of at most :data:`SHARD_BYTES` (one tensor may exceed it),
    with the index transformers reads."""
    from safetensors.torch import save_file

    shards: list[dict[str, torch.Tensor]] = [{}]
    filled = total = 0
    for name, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and filled + nbytes > SHARD_BYTES:
            shards.append({})
            filled = 0
        shards[-1][name] = tensor.contiguous()
        filled += nbytes
        total += nbytes
    weight_map = {}
    for number, shard in enumerate(shards, start=1):
        file_name = f"model-{number:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(directory / file_name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, file_name))
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
