"""The chunked embedded models: joined once, sha256-checked, atomically; bad parts
refused; a missing extra named.

Fake part packages (three chunks in a temporary directory on ``sys.path``, with their
``.dist-info`` versions) stand in for the 22 Qwen wheels.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
from collections import namedtuple
from pathlib import Path

import pytest

from langchain_selfamplify.errors import ModelLoadError
from langchain_selfamplify.models import assembled
from langchain_selfamplify.models.assembled import ChunkedModel, assemble

CHUNKS = [b"GGUF" + b"a" * 60, b"b" * 64, b"c" * 17]


def _install_parts(root: Path, chunks: list[bytes], version: str = "1.0.0",
                   name: str = "fakepart") -> ChunkedModel:
    for n, chunk in enumerate(chunks, start=1):
        package = root / f"{name}{n}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"part{n:02d}.bin").write_bytes(chunk)
        info = root / f"{name}_{n}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}-{n}\n"
                                       f"Version: {version}\n")
    importlib.invalidate_caches()
    whole = b"".join(CHUNKS)
    return ChunkedModel(name="fake-model", file_name="fake.gguf",
                        distribution=f"{name}-{{n}}", package=f"{name}{{n}}",
                        chunk="data/part{n:02d}.bin", parts=len(CHUNKS), version="1.0.0",
                        size=len(whole), sha256=hashlib.sha256(whole).hexdigest(),
                        extra="fake")


@pytest.fixture
def parts_root(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    yield root
    for module in [m for m in sys.modules if m.startswith("fakepart")]:
        del sys.modules[module]


def test_parts_are_joined_once_checked_and_reused(parts_root, tmp_path):
    model = _install_parts(parts_root, CHUNKS)
    cache = tmp_path / "cache"
    path = assemble(model, cache)
    assert path.read_bytes() == b"".join(CHUNKS)
    assert sorted(p.name for p in cache.iterdir()) == ["fake.gguf", "fake.gguf.sha256"]
    stamp = path.stat().st_mtime_ns
    assert assemble(model, cache) == path and path.stat().st_mtime_ns == stamp  # not rejoined


def test_a_changed_upload_is_refused_and_nothing_is_left(parts_root, tmp_path):
    model = _install_parts(parts_root, [CHUNKS[0], b"X" * 64, CHUNKS[2]])
    cache = tmp_path / "cache"
    with pytest.raises(ModelLoadError, match=r"not the pinned .*Reinstall the parts.*fake"):
        assemble(model, cache)
    assert list(cache.iterdir()) == []  # no half-written or unverified file


def test_a_missing_part_names_the_package_to_install(parts_root, tmp_path):
    model = _install_parts(parts_root, CHUNKS[:2])
    with pytest.raises(ModelLoadError, match=r"Part 3 of fake-model \(fakepart-3\) is not "
                                             r"installed; run `pip install --force-reinstall "
                                             r"fakepart-3==1.0.0`"):
        assemble(model, tmp_path / "cache")


def test_a_part_at_another_version_is_refused(parts_root, tmp_path):
    model = _install_parts(parts_root, CHUNKS, version="0.9.0")
    with pytest.raises(ModelLoadError, match=r"fakepart-1 is at version 0.9.0, but fake-model "
                                             r"needs 1.0.0"):
        assemble(model, tmp_path / "cache")


def test_too_little_disk_is_refused_before_writing(parts_root, tmp_path, monkeypatch):
    model = _install_parts(parts_root, CHUNKS)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(assembled.shutil, "disk_usage", lambda path: usage(100, 90, 10))
    cache = tmp_path / "cache"
    with pytest.raises(ModelLoadError, match="needs .* GiB .* has .* GiB free"):
        assemble(model, cache)
    assert list(cache.iterdir()) == []


def test_the_embedded_qwen_model_is_pinned_to_its_published_file():
    from langchain_selfamplify.models.assembled import QWEN_CODER_1_5B
    from langchain_selfamplify.models.embedded import EMBEDDED_MODELS

    assert (QWEN_CODER_1_5B.size, QWEN_CODER_1_5B.parts, QWEN_CODER_1_5B.version) == (
        1_117_320_768, 22, "0.2.0")
    assert QWEN_CODER_1_5B.sha256 == ("cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec4"
                                      "36933bb046")
    assert EMBEDDED_MODELS["qwen2.5-coder-1.5b"] == "Qwen2.5-Coder-1.5B-Instruct"


def test_gemma_without_its_extra_says_what_to_install(monkeypatch):
    from langchain_selfamplify import SLM

    real = importlib.import_module

    def missing(name, *args, **kwargs):
        if name.startswith("gemma3_270m"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", missing)
    with pytest.raises(ModelLoadError, match=r"pip install \"langchain-selfamplify\[gemma\]\""):
        SLM.from_embedded("gemma3-270m")
    with pytest.raises(ModelLoadError, match="embedded models: smollm2-135m, gemma3-270m"):
        SLM.from_embedded("llama")
