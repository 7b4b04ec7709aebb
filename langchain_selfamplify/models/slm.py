"""``SLM``: the small language model every step of Self-AMPLIFY runs on.

It wraps a Hugging Face causal LM and its tokenizer and offers the three things the
pipeline needs: batched **choice scoring** (the probability of each answer label right
after ``"The answer is ("``), batched greedy **generation** with a token cap, and the
**input-embedding layer** for Captum. It also hands LangChain wrappers of the same
in-memory model to app developers (``as_langchain_llm`` / ``as_chat_model``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from langchain_selfamplify.models import generation, label_scoring, langchain_wrappers
from langchain_selfamplify.models.backend import Capabilities
from langchain_selfamplify.models.core import ModelCore
from langchain_selfamplify.models.embedded import (
    DEFAULT_MODEL_NAME,
    EMBEDDED_MODELS,
    default_model_path,
    embedded_model_path,
)
from langchain_selfamplify.models.hf_loading import load_model_and_tokenizer


class SLM(ModelCore):
    """A local Hugging Face causal language model with the calls Self-AMPLIFY needs.

    Build it with :meth:`from_default` (the embedded SmolLM2-135M-Instruct, offline),
    :meth:`from_pretrained` (any Hub id, local directory or ``.gguf`` file), or
    directly from a loaded model and tokenizer.

    The constructor's arguments are :class:`~langchain_selfamplify.models.core.ModelCore`'s:
    the model, its tokenizer, and the settings of batching, prefix caching and
    gradients.
    """

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_default(cls, **kwargs: Any) -> SLM:
        """The embedded default model, SmolLM2-135M-Instruct, loaded offline.

        Keyword arguments go to :meth:`from_pretrained`.
        """
        kwargs.setdefault("name", DEFAULT_MODEL_NAME)
        return cls.from_pretrained(default_model_path(), **kwargs)

    @classmethod
    def from_embedded(cls, name: str = "smollm2-135m", **kwargs: Any) -> SLM:
        """An embedded model, loaded offline: ``"smollm2-135m"`` (the default),
        ``"gemma3-270m"`` (optional extra ``[gemma]``; plain layout, no chat template) or
        ``"qwen2.5-coder-1.5b"`` (optional extra ``[qwen]``; the capable one, joined from
        its chunk wheels and sha256-checked on first use).

        Keyword arguments go to :meth:`from_pretrained`.

        Raises:
            ModelLoadError: unknown name, or the model's package is not installed.
        """
        kwargs.setdefault("name", EMBEDDED_MODELS.get(name, name))
        return cls.from_pretrained(embedded_model_path(name), **kwargs)

    @classmethod
    def load(cls, model: str | None = None, **kwargs: Any) -> SLM:
        """What ``--model`` names: ``None`` for the default embedded model, an embedded
        model's short name (``"gemma3-270m"``), or anything :meth:`from_pretrained` takes."""
        if model is None:
            return cls.from_default(**kwargs)
        if model in EMBEDDED_MODELS:
            return cls.from_embedded(model, **kwargs)
        return cls.from_pretrained(model, **kwargs)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        *,
        gguf_file: str | None = None,
        device: str | None = None,
        device_map: str | dict[str, Any] | None = None,
        torch_dtype: torch.dtype | str | None = None,
        revision: str | None = None,
        trust_remote_code: bool = False,
        **kwargs: Any,
    ) -> SLM:
        """Load a causal LM from a Hub id, a local directory or a ``.gguf`` file.

        Args:
            name_or_path: Hub id (``"google/gemma-2b-it"``), local model directory, or
                path of a ``.gguf`` file (dequantised to float32 by ``transformers``).
            gguf_file: GGUF file name inside ``name_or_path`` (a directory or Hub repo).
            device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; defaults to CUDA when
                available, else CPU. Ignored when ``device_map`` is given.
            device_map: Passed to ``from_pretrained`` (e.g. ``"auto"``) to spread a large
                model over devices with ``accelerate``.
            torch_dtype: Weight dtype (e.g. ``torch.bfloat16``). Defaults to the
                checkpoint's.
            revision: Hub revision.
            trust_remote_code: Allow custom modelling code from the Hub. Defaults to False.
            **kwargs: Passed to :class:`SLM` (``chat_format``, ``batch_size``...).

        Raises:
            ModelLoadError: the model or tokenizer cannot be found or loaded.
        """
        model, tokenizer, name = load_model_and_tokenizer(
            name_or_path, gguf_file=gguf_file, device=device, device_map=device_map,
            torch_dtype=torch_dtype, revision=revision, trust_remote_code=trust_remote_code)
        kwargs.setdefault("name", name)
        return cls(model, tokenizer, **kwargs)

    @property
    def capabilities(self) -> Capabilities:
        """Everything: label and continuation log-probs, token ids, fused
        generate-then-score, and gradients unless the model was loaded with
        ``gradients=False``."""
        return Capabilities(label_log_probs=True, continuation_log_probs=True,
                            gradients=self.supports_gradients, token_ids=True,
                            fused_generate_score=True)

    @property
    def local_model(self) -> SLM:
        """This model: its tensors are local."""
        return self

    # ------------------------------------------------------------------ composed calls
    # Each step is a module function over the core (see its docstring); SLM binds them.
    label_token_id = label_scoring.label_token_id
    label_token_ids = label_scoring.label_token_ids
    score_choices = label_scoring.score_choices
    score_token_lists = label_scoring.score_token_lists
    generate = generation.generate
    generate_then_score = generation.generate_then_score
    as_langchain_llm = langchain_wrappers.as_langchain_llm
    as_chat_model = langchain_wrappers.as_chat_model

    def __repr__(self) -> str:
        return f"SLM(name={self.name!r}, device={self.device}, chat_format={self.chat_format!r})"
