"""``ModelCore``: a local Hugging Face causal LM with its tokenizer, and the tensor-level
calls every local step is built from.

It holds the model and tokenizer, renders and tokenises prompts, pads batches
(``padding.py``), runs the forward pass (projecting to the vocabulary only where logits
are read) and keeps a prefix KV cache (``prefix_cache.py``). Generation
(``generation.py``, ``continuous_batching.py``), label scoring
(``label_scoring.py``), continuation scoring (``answer_formats.py``) and the
explainers import only this module; :class:`~langchain_selfamplify.models.slm.SLM`
composes them into the backend the pipeline runs on.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from langchain_selfamplify.errors import ContextLengthError
from langchain_selfamplify.models import prefix_cache
from langchain_selfamplify.models.chat_format import (
    ChatFormat,
    Message,
    Prompt,
    has_chat_template,
    prompt_text,
    render_chat,
    with_system_prompt,
)
from langchain_selfamplify.models.decode_stats import DecodeStats
from langchain_selfamplify.models.head_input import contiguous_head_inputs
from langchain_selfamplify.models.padding import EncodedBatch, pad_left, pad_right_after_prefix
from langchain_selfamplify.models.shared_prefix import supports_shared_prefix
from langchain_selfamplify.models.sizing import (
    default_batch_size,
    default_decode_slots,
    prefill_tokens,
    token_bounded_runs,
)


class ModelCore:
    """A local causal LM and tokenizer with the tensor-level calls Self-AMPLIFY builds on.

    Built from a loaded model and tokenizer; :class:`~langchain_selfamplify.models.slm.SLM`
    (a subclass) adds the loaders (``from_default``, ``from_pretrained``) and the
    backend's calls.

    Args:
        model: A ``transformers`` causal LM.
        tokenizer: Its tokenizer (a fast tokenizer is needed for word attributions).
        name: Name used in saved prompts and results. Defaults to the model's path.
        chat_format: ``"auto"`` (default) uses the chat template when there is one and a
            plain ``Question:/Answer:`` layout otherwise; ``"chat"`` requires a template;
            ``"plain"`` never uses one.
        system_prompt: Optional system message put before every conversation.
        batch_size: Most prompts per forward pass in scoring and generation; fewer when
            their tokens pass one pass's activation budget (``sizing.prefill_tokens``).
            Defaults to 16 on a CPU, and to what the free memory holds on a GPU (see
            ``sizing.py``).
        decode_slots: Replies decoded together when prompts share a prefix (continuous
            batching; a decoding step costs about the same for 1 or 64 rows on a CPU, as
            it is bound by reading the weights). Defaults to 64 on a CPU, and to what
            the free memory holds on a GPU, up to 256 (see ``sizing.py``).
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
        batch_size: int | None = None,
        decode_slots: int | None = None,
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
        self.batch_size = (batch_size if batch_size is not None
                           else default_batch_size(model, self.device))
        self.decode_slots = (decode_slots if decode_slots is not None
                             else default_decode_slots(model, self.device))
        self.seed = seed
        self.show_progress = show_progress
        # Passes of the continuous-batching decoder, for speed benchmarks.
        self.decode_stats = DecodeStats()
        self.supports_gradients = gradients
        self.prefix_cache = prefix_cache
        self.min_prefix_tokens = min_prefix_tokens
        # The last prefix's ids and KV cache, reused by the next call (prefix_cache.py).
        self.kept_prefix: tuple[tuple[int, ...], Any] | None = None
        self.label_ids: dict[str, int] = {}
        # A batch's shared prefix kept once, not once per row (see shared_prefix.py).
        self.shares_prefix = supports_shared_prefix(model)
        # Most causal LMs can skip the vocabulary projection of positions not read; the
        # rows they keep then reach it as a strided view, copied first (head_input.py).
        forward_parameters = inspect.signature(model.forward).parameters
        self._takes_logits_to_keep = "logits_to_keep" in forward_parameters
        contiguous_head_inputs(model)
        # transformers 5 renamed ``past_key_values`` to ``cache`` (the old name warns, and
        # goes in 5.40); callers of forward() always say ``cache``.
        self.cache_kwarg = "cache" if "cache" in forward_parameters else "past_key_values"
        decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
        decoder_parameters = inspect.signature(decoder.forward).parameters if decoder else {}
        self._decoder_cache_kwarg = ("cache" if "cache" in decoder_parameters
                                     else "past_key_values")
        # One model, many callers (LangChain batch/abatch run threads): serialise use.
        self.lock = threading.RLock()
        if chat_format == "chat":
            render_chat(tokenizer, [{"role": "user", "content": "x"}], "", "chat")

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

    def uses_template(self) -> bool:
        return self.chat_format == "chat" or (self.chat_format == "auto" and self.has_chat_template)

    def tokenize(self, prompts: Sequence[Prompt], reserve: int = 0) -> list[list[int]]:
        """Token ids of prompts from :meth:`format_prompt`, checked against the context.

        Args:
            prompts: Prompt texts.
            reserve: Tokens to keep free for generation.

        Raises:
            ContextLengthError: a prompt plus ``reserve`` exceeds :attr:`context_length`.
        """
        texts = [prompt_text(prompt, self.format_prompt) for prompt in prompts]
        ids = self.tokenizer(texts, add_special_tokens=not self.uses_template())
        token_lists = [list(row) for row in ids["input_ids"]]
        for index, tokens in enumerate(token_lists):
            if len(tokens) + reserve > self.context_length:
                raise ContextLengthError(
                    f"Prompt {index} has {len(tokens)} tokens (+{reserve} to generate); "
                    f"{self.name} accepts {self.context_length}. Use fewer or shorter "
                    "demonstrations, or a model with a longer context."
                )
        return token_lists

    def count_tokens(self, text: Prompt, *, prompt: bool = True) -> int:
        """Number of tokens of a prompt from :meth:`format_prompt` (``prompt=True``), or
        of a bare piece of text such as a rationale (``prompt=False``: no special
        tokens added)."""
        special = prompt and not self.uses_template()
        rendered = prompt_text(text, self.format_prompt)
        return len(self.tokenizer(rendered, add_special_tokens=special)["input_ids"])

    def encode(self, prompts: Sequence[Prompt], reserve: int = 0) -> EncodedBatch:
        """Tokenise prompts into a left-padded batch with matching position ids."""
        return self.pad_left(self.tokenize(prompts, reserve))

    def pad_left(self, token_lists: Sequence[Sequence[int]]) -> EncodedBatch:
        """Token lists as a left-padded batch (see :func:`padding.pad_left`)."""
        return pad_left(token_lists, self.tokenizer.pad_token_id, self.device)

    def pad_right_after_prefix(self, suffixes: Sequence[Sequence[int]], shared: int
                               ) -> EncodedBatch:
        """Rows' own tokens right-padded after a cached prefix of ``shared`` tokens (see
        :func:`padding.pad_right_after_prefix`)."""
        return pad_right_after_prefix(suffixes, shared, self.tokenizer.pad_token_id,
                                      self.device)

    def forward(self, keep: int | torch.Tensor, **inputs: Any) -> Any:
        """Run the model, computing logits only where they are read.

        Args:
            keep: ``n`` for the last ``n`` positions, or a 1-D tensor of positions.
            **inputs: Model inputs (``input_ids``, ``cache``...); ``cache`` is passed
                under the name this ``transformers`` version takes.

        Returns:
            The model output, its ``logits`` restricted to the ``keep`` positions.
        """
        if "cache" in inputs and self.cache_kwarg != "cache":
            inputs[self.cache_kwarg] = inputs.pop("cache")
        if self._takes_logits_to_keep:
            return self.model(**inputs, logits_to_keep=keep)
        output = self.model(**inputs)
        logits = output.logits
        output.logits = logits[:, -keep:] if isinstance(keep, int) else logits[:, keep]
        return output

    def logits_after_prefix(self, token_lists: Sequence[Sequence[int]], shared: int,
                            reads: Sequence[Sequence[int]]) -> torch.Tensor:
        """Logits at chosen positions of token lists that start with the same ``shared``
        tokens: target scoring, written once for labels, cloze continuations and
        perturbation coalitions.

        The shared prefix comes from its cache (see :meth:`cache_for_rows`); each
        row's own tokens run right-padded after it, and only the positions read are
        projected to the vocabulary.

        Args:
            token_lists: One token list per row, each longer than ``shared``.
            shared: Length of the prefix common to every row (0 for none).
            reads: For each row, the positions read, counted in the row's own tokens
                (after the prefix).

        Returns:
            ``(total positions read, vocab)``, row by row in the order of ``reads``.
        """
        suffixes = [list(tokens[shared:]) for tokens in token_lists]
        batch = self.pad_right_after_prefix(suffixes, shared)
        inputs: dict[str, Any] = {"input_ids": batch.input_ids,
                                  "attention_mask": batch.attention_mask,
                                  "position_ids": batch.position_ids}
        context: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if shared:
            inputs["cache"], context = self.cache_for_rows(token_lists[0][:shared],
                                                           len(suffixes))
        pairs = [(row, position) for row, read in enumerate(reads) for position in read]
        with context:
            return self.logits_at([row for row, _ in pairs], [p for _, p in pairs], **inputs)

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
    shared_prefix_length = prefix_cache.shared_prefix_length
    kv_cache_of = prefix_cache.kv_cache_of
    repeated_kv_cache = prefix_cache.repeated_kv_cache
    cache_for_rows = prefix_cache.cache_for_rows

    def batches(
        self, token_lists: Sequence[Sequence[int]], shared: int, desc: str | None
    ) -> Iterator[list[int]]:
        """Indices of ``token_lists`` in forward-pass batches, shortest prompts first,
        with a progress bar labelled ``desc`` when there are several."""
        order = sorted(range(len(token_lists)), key=lambda i: len(token_lists[i]))
        # At most batch_size rows, and rows x padded width within the activation budget
        # of one prompt-encoding pass: long prompts (a rationale, no shared prefix) in
        # full batches took more memory than the model's caches.
        widths = [len(token_lists[i]) - shared for i in order]
        runs = token_bounded_runs(widths, prefill_tokens(self.model, self.device),
                                  self.batch_size)
        batches = [order[run.start:run.stop] for run in runs]
        show = bool(desc) and self.show_progress and len(batches) > 1
        yield from tqdm(batches, desc=desc, disable=not show, leave=False)
