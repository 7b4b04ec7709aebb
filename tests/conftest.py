"""Shared fixtures: a tiny randomly initialised Llama built here, and the real default model.

The tiny model and its tokenizer are made from scratch (tokenizer trained on the
bundled demo set), saved to a temporary directory and loaded back through
``SLM.from_pretrained``, so unit tests exercise the real loading path offline and
in seconds. Tests marked ``integration`` use the embedded SmolLM2-135M-Instruct.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def real_or_demo_pool(size: int) -> list:
    """The first ``size`` ARC-Challenge train questions when the shared datasets are
    beside the repository, else the demo set's pool."""
    from langchain_selfamplify import load_dataset, load_demo_set

    if SHARED_DATASETS.is_dir():
        return load_dataset("arc_challenge", split="train", data_dir=SHARED_DATASETS,
                            limit=size)
    return load_demo_set("pool")[:size]


def build_tiny_model(directory: Path, chat_template: bool = True) -> Path:
    """Write a 2-layer random Llama and a BPE tokenizer trained on the demo set."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from langchain_selfamplify import load_demo_set

    corpus = [ex.render() for ex in load_demo_set("all")]
    corpus += ["The answer is (A). The answer is (B). The answer is (C). The answer is (D).",
               "Step 1: Step 2: Step 3: keywords suggest that the answer is", "user assistant"]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=800,
        special_tokens=["<unk>", "<pad>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>",
                                   pad_token="<pad>", eos_token="<|im_end|>")
    if chat_template:
        fast.chat_template = CHATML
    config = LlamaConfig(
        vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        pad_token_id=fast.pad_token_id, eos_token_id=fast.eos_token_id, bos_token_id=None,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = fast.eos_token_id
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    fast.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_plain_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama-plain"), chat_template=False)


@pytest.fixture(scope="session")
def tiny_slm(tiny_model_dir: Path):
    from langchain_selfamplify import SLM

    return SLM.from_pretrained(tiny_model_dir, device="cpu", show_progress=False, batch_size=4)


@pytest.fixture(scope="session")
def demo_pool():
    from langchain_selfamplify import load_demo_set

    return load_demo_set("pool")


@pytest.fixture(scope="session")
def default_slm():
    """The embedded SmolLM2-135M-Instruct (about 20 s to load)."""
    from langchain_selfamplify import SLM

    try:
        return SLM.from_default(device="cpu", show_progress=False)
    except Exception as exc:  # pragma: no cover - only when the wheel is missing
        pytest.fail(f"the embedded default model must load offline: {exc}")
