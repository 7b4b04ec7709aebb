"""``SLM``: the small language model every step of Self-AMPLIFY runs on.

It wraps a Hugging Face causal LM and its tokenizer and offers the three things the
pipeline needs: batched **choice scoring** (the probability of each answer label right
after ``"The answer is ("``), batched greedy **generation** with a token cap, and the
**input-embedding layer** for Captum. It also hands LangChain wrappers of the same
in-memory model to app developers (``as_langchain_llm`` / ``as_chat_model``).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from langchain_selfamplify.errors import ContextLengthError
from langchain_selfamplify.models import generation, label_scoring, langchain_wrappers
from langchain_selfamplify.models.backend import Capabilities
from langchain_selfamplify.models.chat_format import (
    ChatFormat,
    Message,
    has_chat_template,
    render_chat,
    with_system_prompt,
)
from langchain_selfamplify.models.choice_scores import ChoiceScores
from langchain_selfamplify.models.default import (
    DEFAULT_MODEL_NAME,
    EMBEDDED_MODELS,
    default_model_path,
    embedded_model_path,
)
from langchain_selfamplify.models.loading import load_model_and_tokenizer
from langchain_selfamplify.models.shared_prefix import (
    cache_head,
    common_prefix_length,
    shared_prefix_attention_for,
    shared_prefix_cache,
    supports_shared_prefix,
)

logger = logging.getLogger(__name__)



@dataclass
class EncodedBatch:
    """A left-padded batch ready for the model."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor


class SLM:
    """A local Hugging Face causal language model with the calls Self-AMPLIFY needs.

    Build it with :meth:`from_default` (the embedded SmolLM2-135M-Instruct, offline),
    :meth:`from_pretrained` (any Hub id, local directory or ``.gguf`` file), or
    directly from a loaded model and tokenizer.

    Args:
        model: A ``transformers`` causal LM.
        tokenizer: Its tokenizer (a fast tokenizer is needed for word attributions).
        name: Name used in saved prompts and results. Defaults to the model's path.
        chat_format: ``"auto"`` (default) uses the chat template when there is one and a
            plain ``Question:/Answer:`` layout otherwise; ``"chat"`` requires a template;
            ``"plain"`` never uses one.
        system_prompt: Optional system message put before every conversation.
        batch_size: Prompts per forward pass in scoring and generation. Defaults to 16.
        decode_slots: Replies decoded together when prompts share a prefix (continuous
            batching; a decoding step costs about the same for 1 or 64 rows on a CPU, as
            it is bound by reading the weights). Defaults to 64.
        seed: Seed set before any generation, for reproducible runs. Defaults to 0.
        show_progress: Show tqdm progress bars on long calls. Defaults to True.
        prefix_cache: Encode a prefix shared by all prompts of a call (a few-shot
            prompt) once and reuse its KV cache. Defaults to True.
        min_prefix_tokens: Shortest shared prefix worth caching. Defaults to 8 (the
            system turn of a chat template is already worth it).
        gradients: Whether gradient explainers (DeepLift, Integrated Gradients...) may
            back-propagate through this model. Set False for models that cannot (some
            quantised or compiled models). Defaults to True.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str | None = None,
        chat_format: ChatFormat = "auto",
        system_prompt: str | None = None,
        batch_size: int = 16,
        decode_slots: int = 64,
        seed: int = 0,
        show_progress: bool = True,
        prefix_cache: bool = True,
        min_prefix_tokens: int = 8,
        gradients: bool = True,
    ) -> None:
        if chat_format not in ("auto", "chat", "plain"):
            raise ValueError(f"chat_format must be 'auto', 'chat' or 'plain', not {chat_format!r}")
        self.model = model.eval()
        # Only input gradients are needed (Captum); parameter gradients would waste memory.
        self.model.requires_grad_(False)
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.name = name or str(getattr(model, "name_or_path", "") or "model")
        self.chat_format: ChatFormat = chat_format
        self.system_prompt = system_prompt
        self.batch_size = batch_size
        self.decode_slots = decode_slots
        self.seed = seed
        self.show_progress = show_progress
        self.supports_gradients = gradients
        self.prefix_cache = prefix_cache
        self.min_prefix_tokens = min_prefix_tokens
        self._cached_prefix: tuple[tuple[int, ...], Any] | None = None
        self._label_ids: dict[str, int] = {}
        # A batch's shared prefix kept once, not once per row (see shared_prefix.py).
        self._shares_prefix = supports_shared_prefix(model)
        # Most causal LMs can skip the vocabulary projection of positions not read.
        forward_parameters = inspect.signature(model.forward).parameters
        self._takes_logits_to_keep = "logits_to_keep" in forward_parameters
        # transformers 5 renamed ``past_key_values`` to ``cache`` (the old name warns, and
        # goes in 5.40); callers of forward() always say ``cache``.
        self._cache_kwarg = "cache" if "cache" in forward_parameters else "past_key_values"
        decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
        decoder_parameters = inspect.signature(decoder.forward).parameters if decoder else {}
        self._decoder_cache_kwarg = ("cache" if "cache" in decoder_parameters
                                     else "past_key_values")
        # One model, many callers (LangChain batch/abatch run threads): serialise use.
        self.lock = threading.RLock()
        if chat_format == "chat":
            render_chat(tokenizer, [{"role": "user", "content": "x"}], "", "chat")

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

    # ------------------------------------------------------------------ facts
    @property
    def device(self) -> torch.device:
        """Device of the model's input embeddings (where inputs must go)."""
        return self.embedding_layer.weight.device

    @property
    def embedding_layer(self) -> torch.nn.Embedding:
        """The input-embedding layer, the layer Captum attributes on."""
        layer = self.model.get_input_embeddings()
        if layer is None:
            raise AttributeError(f"{self.name} exposes no input-embedding layer")
        return layer

    @property
    def context_length(self) -> int:
        """Longest prompt + continuation the model accepts, in tokens."""
        config = self.model.config
        limits = [
            value
            for value in (
                getattr(config, "max_position_embeddings", None),
                getattr(config, "n_positions", None),
                getattr(self.tokenizer, "model_max_length", None),
            )
            if isinstance(value, int) and 0 < value < 1_000_000
        ]
        return min(limits) if limits else 2048

    @property
    def capabilities(self) -> Capabilities:
        """Everything: label and continuation log-probs, token ids, and gradients unless
        the model was loaded with ``gradients=False``."""
        return Capabilities(label_log_probs=True, continuation_log_probs=True,
                            gradients=self.supports_gradients, token_ids=True)

    @property
    def has_chat_template(self) -> bool:
        """Whether the tokenizer carries a chat template."""
        return has_chat_template(self.tokenizer)

    # ------------------------------------------------------------------ prompts
    def format_prompt(self, messages: Sequence[Message], assistant_prefix: str = "") -> str:
        """Render a conversation and open an assistant turn starting with ``assistant_prefix``.

        The system prompt, if any, is put first. See :func:`render_chat`.
        """
        messages = with_system_prompt(messages, self.system_prompt)
        text, _ = render_chat(self.tokenizer, messages, assistant_prefix, self.chat_format)
        return text

    def _uses_template(self) -> bool:
        return self.chat_format == "chat" or (self.chat_format == "auto" and self.has_chat_template)

    def tokenize(self, prompts: Sequence[str], reserve: int = 0) -> list[list[int]]:
        """Token ids of prompts from :meth:`format_prompt`, checked against the context.

        Args:
            prompts: Prompt texts.
            reserve: Tokens to keep free for generation.

        Raises:
            ContextLengthError: a prompt plus ``reserve`` exceeds :attr:`context_length`.
        """
        ids = self.tokenizer(list(prompts), add_special_tokens=not self._uses_template())
        token_lists = [list(row) for row in ids["input_ids"]]
        for index, tokens in enumerate(token_lists):
            if len(tokens) + reserve > self.context_length:
                raise ContextLengthError(
                    f"Prompt {index} has {len(tokens)} tokens (+{reserve} to generate); "
                    f"{self.name} accepts {self.context_length}. Use fewer or shorter "
                    "demonstrations, or a model with a longer context."
                )
        return token_lists

    def count_tokens(self, text: str, *, prompt: bool = True) -> int:
        """Number of tokens of a prompt from :meth:`format_prompt` (``prompt=True``), or
        of a bare piece of text such as a rationale (``prompt=False``: no special
        tokens added)."""
        special = prompt and not self._uses_template()
        return len(self.tokenizer(text, add_special_tokens=special)["input_ids"])

    def encode(self, prompts: Sequence[str], reserve: int = 0) -> EncodedBatch:
        """Tokenise prompts into a left-padded batch with matching position ids."""
        return self.pad_left(self.tokenize(prompts, reserve))

    def pad_left(self, token_lists: Sequence[Sequence[int]]) -> EncodedBatch:
        """Token lists as a left-padded batch, with position ids counted from each
        list's first real token."""
        width = max(len(tokens) for tokens in token_lists)
        ids = torch.full((len(token_lists), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, tokens in enumerate(token_lists):
            ids[row, width - len(tokens):] = torch.tensor(tokens, dtype=torch.long)
            mask[row, width - len(tokens):] = 1
        # Left padding shifts positions; count them from each prompt's first real token
        # so a padded prompt scores exactly as it would alone.
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        return EncodedBatch(ids.to(self.device), mask.to(self.device), positions.to(self.device))

    def pad_right_after_prefix(self, suffixes: Sequence[Sequence[int]], shared: int
                               ) -> EncodedBatch:
        """Rows' own tokens right-padded after a cached prefix of ``shared`` tokens.

        The attention mask covers the prefix and each row's real tokens; positions
        continue from the prefix. A row's last real token never sees the padding that
        follows it, so its logits equal those of the row alone.
        """
        width = max(len(suffix) for suffix in suffixes)
        ids = torch.full((len(suffixes), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros(len(suffixes), shared + width, dtype=torch.long)
        mask[:, :shared] = 1
        for row, suffix in enumerate(suffixes):
            ids[row, : len(suffix)] = torch.tensor(list(suffix), dtype=torch.long)
            mask[row, shared : shared + len(suffix)] = 1
        positions = (shared + torch.arange(width)).expand(len(suffixes), width)
        return EncodedBatch(ids.to(self.device), mask.to(self.device), positions.to(self.device))

    def forward(self, keep: int | torch.Tensor, **inputs: Any) -> Any:
        """Run the model, computing logits only where they are read.

        Args:
            keep: ``n`` for the last ``n`` positions, or a 1-D tensor of positions.
            **inputs: Model inputs (``input_ids``, ``cache``...); ``cache`` is passed
                under the name this ``transformers`` version takes.

        Returns:
            The model output, its ``logits`` restricted to the ``keep`` positions.
        """
        if "cache" in inputs and self._cache_kwarg != "cache":
            inputs[self._cache_kwarg] = inputs.pop("cache")
        if self._takes_logits_to_keep:
            return self.model(**inputs, logits_to_keep=keep)
        output = self.model(**inputs)
        logits = output.logits
        output.logits = logits[:, -keep:] if isinstance(keep, int) else logits[:, keep]
        return output

    def logits_at(self, rows: Sequence[int], positions: Sequence[int],
                  **inputs: Any) -> torch.Tensor:
        """Logits at chosen ``(row, position)`` pairs only, ``(len(rows), vocab)``.

        The decoder runs over the whole batch, but the vocabulary projection (the
        largest matrix product of a scoring pass for a 150k-word vocabulary) runs for
        the pairs read, not for every position any row reads times every row.

        Args:
            rows: Batch row of each pair.
            positions: Sequence position of each pair (within ``input_ids``).
            **inputs: Model inputs, as for :meth:`forward`.
        """
        decoder = self.model.get_decoder() if hasattr(self.model, "get_decoder") else None
        head = self.model.get_output_embeddings()
        if decoder is None or head is None or decoder is self.model:
            keep = sorted(set(positions))
            logits = self.forward(torch.tensor(keep, device=self.device), **inputs).logits
            column = torch.tensor([keep.index(p) for p in positions], device=logits.device)
            return logits[torch.tensor(list(rows), device=logits.device), column]
        if "cache" in inputs and self._decoder_cache_kwarg != "cache":
            inputs[self._decoder_cache_kwarg] = inputs.pop("cache")
        hidden = decoder(**inputs).last_hidden_state
        picked = hidden[torch.tensor(list(rows), device=hidden.device),
                        torch.tensor(list(positions), device=hidden.device)]
        return self._scale_logits(head(picked))

    def _scale_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """What a causal LM's own forward does to ``lm_head``'s output, for the model
        families that do anything (Cohere's scale, Granite's divisor, Gemma's cap)."""
        config = getattr(self.model.config, "get_text_config", lambda: self.model.config)()
        if getattr(config, "logit_scale", None):
            logits = logits * config.logit_scale
        if getattr(config, "logits_scaling", None):
            logits = logits / config.logits_scaling
        cap = getattr(config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits

    # ------------------------------------------------------------------ prefix cache
    def _shared_prefix_length(self, token_lists: Sequence[Sequence[int]]) -> int:
        """Tokens shared by all prompts (0 when too few to be worth caching).

        Each prompt keeps at least one token of its own, whose logits are read. A
        single prompt's "shared prefix" is all but its last token, when the model keeps
        one copy of a prefix (so :meth:`kv_cache_of` can reuse what the previous call
        cached: a DSPy program's calls differ only after their demonstrations).
        """
        if not self.prefix_cache or not token_lists:
            return 0
        if len(token_lists) == 1:
            length = len(token_lists[0]) - 1
            return length if self._shares_prefix and length >= self.min_prefix_tokens else 0
        first = token_lists[0]
        length = min(len(tokens) for tokens in token_lists) - 1
        for tokens in token_lists[1:]:
            length = min(length, common_prefix_length(first, tokens))
        return length if length >= self.min_prefix_tokens else 0

    def kv_cache_of(self, prefix: Sequence[int]) -> Any:
        """KV cache of a token sequence that starts with ``prefix`` (do not modify it).

        The last cache computed is kept: a call with the same prefix, or with any
        prefix of the kept sequence (the perturbation explainers crop the cache of
        the whole prompt to each coalition's untouched head), runs no model call. A
        prefix that shares at least ``min_prefix_tokens`` with the kept sequence (on a
        model with plain attention) runs only its tokens after the common head.
        """
        key = tuple(prefix)
        kept = self._cached_prefix
        if kept is not None and kept[0][: len(key)] == key:
            return kept[1]
        reuse = (common_prefix_length(kept[0], key)
                 if kept is not None and self._shares_prefix else 0)
        if reuse >= self.min_prefix_tokens:
            # Only the common head is taken (as views), not a copy of the whole kept cache.
            cache = cache_head(kept[1], reuse)  # type: ignore[index]
            ids = torch.tensor([list(key[reuse:])], device=self.device)
            positions = torch.arange(reuse, len(key), device=self.device)[None]
            cache = output_cache(self.forward(1, input_ids=ids, position_ids=positions,
                                              cache=cache, use_cache=True))
        else:
            ids = torch.tensor([list(key)], device=self.device)
            cache = output_cache(self.forward(1, input_ids=ids, use_cache=True))
        self._cached_prefix = (key, cache)
        return cache

    def repeated_kv_cache(self, prefix: Sequence[int], batch: int) -> Any:
        """A fresh KV cache of ``prefix`` repeated ``batch`` times, to continue from.

        The model is run on ``prefix`` only when it is not a prefix of the last
        sequence cached; the returned copy may be extended freely.
        """
        cache = copy.deepcopy(self.kv_cache_of(prefix))
        extra = cache.get_seq_length() - len(prefix)
        if extra > 0:
            cache.crop(-extra)  # a negative count removes tokens in every transformers version
        if batch > 1:
            cache.batch_repeat_interleave(batch)
        return cache

    def _cache_for_rows(self, prefix: Sequence[int], rows: int
                        ) -> tuple[Any, contextlib.AbstractContextManager[Any]]:
        """A KV cache of ``prefix`` for ``rows`` rows to continue, and the context the
        model must run in: the prefix kept once with shared-prefix attention when the
        model allows it, else repeated for every row."""
        if self._shares_prefix:
            cache = shared_prefix_cache(self.kv_cache_of(prefix), len(prefix))
            return cache, shared_prefix_attention_for(self.model, cache)
        return self.repeated_kv_cache(prefix, rows), contextlib.nullcontext()

    # ------------------------------------------------------------------ scoring
    def label_token_id(self, label: str) -> int:
        """Token id the model emits for ``label`` right after ``"The answer is ("``
        (see :func:`label_scoring.label_token_id`)."""
        return label_scoring.label_token_id(self, label)

    def label_token_ids(self, labels: Sequence[str]) -> list[int]:
        """Token ids of ``labels``; raises ``ValueError`` when two labels share a token."""
        return label_scoring.label_token_ids(self, labels)

    def score_choices(
        self,
        prompts: Sequence[str],
        labels: Sequence[Sequence[str]],
        *,
        desc: str | None = None,
    ) -> list[ChoiceScores]:
        """Probability of each answer label at the end of each prompt.

        Prompts should end with ``"The answer is ("`` (see :meth:`format_prompt`). One
        forward pass per batch of :attr:`batch_size` prompts. When the prompts share a
        long prefix (a few-shot prompt), its KV cache is computed once and only each
        prompt's own tokens are run; otherwise prompts are left-padded, with position
        ids counted from each prompt's first token.

        Args:
            prompts: Prompt texts.
            labels: Labels to score for each prompt.
            desc: Progress-bar label; no bar when ``None``.
        """
        return self.score_token_lists(self.tokenize(prompts), labels, desc=desc)

    def score_token_lists(
        self,
        token_lists: Sequence[Sequence[int]],
        labels: Sequence[Sequence[str]],
        *,
        desc: str | None = None,
    ) -> list[ChoiceScores]:
        """:meth:`score_choices` on prompts already tokenised (e.g. with words erased)."""
        return label_scoring.score_token_lists(self, token_lists, labels, desc=desc)

    # ------------------------------------------------------------------ generation
    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 64,
        stop: Sequence[str] | None = None,
        desc: str | None = None,
    ) -> list[str]:
        """Greedy continuation of each prompt, capped at ``max_new_tokens`` tokens.

        A prefix shared by all prompts is encoded once and its KV cache reused, as in
        :meth:`score_choices`. When the model allows shared-prefix attention the prefix
        is kept once for the whole batch and decoding is continuously batched: a
        finished reply's slot goes to the next prompt at once. Otherwise each batch of
        :attr:`batch_size` prompts runs through ``model.generate``.

        Args:
            prompts: Prompt texts from :meth:`format_prompt`.
            max_new_tokens: Token cap per continuation. Defaults to 64.
            stop: Strings that end a continuation; the text is cut before the first one.
            desc: Progress-bar label; no bar when ``None``.

        Returns:
            The continuations, special tokens removed, in the order of ``prompts``.
        """
        return generation.generate(self, prompts, max_new_tokens=max_new_tokens, stop=stop,
                                   desc=desc)

    def generate_then_score(
        self,
        prompts: Sequence[str],
        follow_up: Callable[[int, str], str],
        labels: Sequence[Sequence[str]],
        *,
        max_new_tokens: int = 64,
        stop: Sequence[str] | None = None,
        desc: str | None = None,
    ) -> list[tuple[str, ChoiceScores]]:
        """Each prompt's greedy reply, then its answer labels scored after a follow-up.

        What :meth:`generate` then :meth:`score_choices` on ``follow_up(i, reply)``
        compute, but where the model allows shared-prefix attention the follow-up runs
        in the reply's decoding slot: only its tokens past what the slot has cached
        (``"\\nThe answer is ("`` after a rationale) are fed, instead of a second pass
        over the whole prompt.

        Args:
            prompts: Prompt texts from :meth:`format_prompt`.
            follow_up: ``(prompt index, reply cut at the stop strings) -> prompt text``
                ending where the labels are scored; it must extend the prompt.
            labels: Labels to score for each prompt.
            max_new_tokens: Token cap per reply. Defaults to 64.
            stop: Strings that end a reply; it is cut before the first one.
            desc: Progress-bar label; no bar when ``None``.

        Returns:
            ``(reply, label scores)`` per prompt, in the order of ``prompts``.
        """
        return generation.generate_then_score(self, prompts, follow_up, labels,
                                              max_new_tokens=max_new_tokens, stop=stop,
                                              desc=desc)

    def _batches(
        self, token_lists: Sequence[Sequence[int]], shared: int, desc: str | None
    ) -> Iterator[list[int]]:
        order = sorted(range(len(token_lists)), key=lambda i: len(token_lists[i]))
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        show = bool(desc) and self.show_progress and len(batches) > 1
        yield from tqdm(batches, desc=desc, disable=not show, leave=False)

    # ------------------------------------------------------------------ LangChain
    def as_langchain_llm(self, max_new_tokens: int = 128, **pipeline_kwargs: Any) -> Any:
        """This model as a ``langchain_huggingface.HuggingFacePipeline`` (text in, text out).

        No Hub call: the pipeline wraps the model already in memory.
        """
        return langchain_wrappers.as_langchain_llm(self, max_new_tokens, **pipeline_kwargs)

    def as_chat_model(self, max_new_tokens: int = 128, **pipeline_kwargs: Any) -> Any:
        """This model as a ``langchain_huggingface.ChatHuggingFace`` chat model.

        Raises:
            ChatTemplateError: the tokenizer has no chat template.
        """
        return langchain_wrappers.as_chat_model(self, max_new_tokens, **pipeline_kwargs)

    def __repr__(self) -> str:
        return f"SLM(name={self.name!r}, device={self.device}, chat_format={self.chat_format!r})"


def output_cache(output: Any) -> Any:
    """The KV cache a model call returned (``cache``, or ``past_key_values`` before
    transformers 5), read without touching the deprecated name when the new one exists."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values

