"""A GGUF model is converted once and later loads read the conversion: the same tensors,
tokenizer and generation config, written atomically, rebuilt when damaged."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from langchain_selfamplify.models import gguf_cache
from langchain_selfamplify.models.gguf_cache import (
    caching_enabled,
    converted_dir,
    save_converted,
)


def _tiny(tied: bool = False):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=tied))


def _same_weights(first, second) -> bool:
    a, b = first.state_dict(), second.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("tied", [False, True])
def test_a_conversion_in_several_shards_loads_back_the_same_tensors(
        tiny_model_dir, tmp_path, monkeypatch, tied):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = _tiny(tied), AutoTokenizer.from_pretrained(tiny_model_dir)
    monkeypatch.setattr(gguf_cache, "SHARD_BYTES", 4096)  # force many shards
    target = tmp_path / "converted" / "tiny-0123"
    assert save_converted(model, tokenizer, target)
    assert len(list(target.glob("model-*.safetensors"))) > 2
    assert [p.name for p in target.parent.iterdir()] == ["tiny-0123"]  # no partial left
    loaded, info = AutoModelForCausalLM.from_pretrained(target, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert _same_weights(model, loaded)
    if tied:
        assert loaded.lm_head.weight.data_ptr() == loaded.model.embed_tokens.weight.data_ptr()
    reloaded = AutoTokenizer.from_pretrained(target)
    assert reloaded("The answer is (B).").input_ids == tokenizer("The answer is (B).").input_ids


def test_nothing_is_written_for_a_model_that_is_not_plain_float32(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    target = tmp_path / "converted" / "tiny"
    assert not save_converted(_tiny().to(torch.bfloat16),
                              AutoTokenizer.from_pretrained(tiny_model_dir), target)
    assert not target.parent.exists() or not any(target.parent.iterdir())


def test_too_little_disk_skips_the_cache_with_a_warning(tiny_model_dir, tmp_path, monkeypatch,
                                                        caplog):
    from collections import namedtuple

    from transformers import AutoTokenizer

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(gguf_cache.shutil, "disk_usage", lambda _: usage(10, 10, 0))
    target = tmp_path / "converted" / "tiny"
    with caplog.at_level(logging.WARNING):
        assert not save_converted(_tiny(), AutoTokenizer.from_pretrained(tiny_model_dir),
                                  target)
    assert "needs" in caplog.text and not target.exists()


def test_the_cache_key_follows_the_file_and_the_switch_turns_it_off(tmp_path, monkeypatch):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + b"0" * 10)
    first = converted_dir(gguf, tmp_path)
    gguf.write_bytes(b"GGUF" + b"1" * 11)  # a changed file is converted again
    assert converted_dir(gguf, tmp_path) != first
    assert first.parent == tmp_path / "converted" and first.name.startswith("m-")
    monkeypatch.setenv("SELFAMPLIFY_GGUF_CACHE", "0")
    assert not caching_enabled()
    monkeypatch.setenv("SELFAMPLIFY_GGUF_CACHE", "1")
    assert caching_enabled()


@pytest.mark.integration
def test_the_embedded_gguf_converted_once_loads_the_same_model(tmp_path, monkeypatch, caplog):
    """One real GGUF read (SmolLM2, ~25 s): a damaged conversion found in its place is
    replaced, and the next load reads the conversion and gets the same model."""
    from langchain_selfamplify.models.embedded import default_model_path
    from langchain_selfamplify.models.hf_loading import load_model_and_tokenizer
    from langchain_selfamplify.models.served import load_tokenizer

    monkeypatch.setenv("SELFAMPLIFY_CACHE", str(tmp_path))
    gguf = Path(default_model_path())
    target = converted_dir(gguf)
    target.mkdir(parents=True)
    (target / "config.json").write_text("{ not json")  # a damaged conversion
    with caplog.at_level(logging.WARNING):
        model, tokenizer, name = load_model_and_tokenizer(gguf, device="cpu")
    assert "reading the GGUF again" in caplog.text
    assert (target / "model.safetensors.index.json").is_file()
    cached, cached_tokenizer, cached_name = load_model_and_tokenizer(gguf, device="cpu")
    assert cached_name == name == str(gguf)  # records name the GGUF, not the cache
    assert _same_weights(model, cached)
    assert cached.generation_config.to_dict() == model.generation_config.to_dict()
    texts = ["Question: Which gas do plants take in?\n(A) oxygen (B) carbon dioxide",
             "naïve café 🙂  two  spaces\ttab", "<|im_start|>user\nhi<|im_end|>"]
    assert [cached_tokenizer(t).input_ids for t in texts] == [tokenizer(t).input_ids
                                                              for t in texts]
    assert cached_tokenizer.all_special_tokens == tokenizer.all_special_tokens
    served_tokenizer = load_tokenizer(gguf)  # a served model's tokenizer: read converted
    assert Path(served_tokenizer.name_or_path) == target
    assert [served_tokenizer(t).input_ids for t in texts] == [tokenizer(t).input_ids
                                                              for t in texts]
    chat = [{"role": "user", "content": "Pick one."}]
    assert cached_tokenizer.apply_chat_template(chat, tokenize=False,
                                                add_generation_prompt=True) == \
        tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    ids = tokenizer("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.equal(cached(ids).logits, model(ids).logits)
    bf16, _, _ = load_model_and_tokenizer(gguf, device="cpu", torch_dtype=torch.bfloat16)
    assert _same_weights(bf16, model.to(torch.bfloat16))
