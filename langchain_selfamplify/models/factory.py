"""One place that turns the command line's model options into a model backend."""

from __future__ import annotations

from typing import Any

from langchain_selfamplify.models.backend import ModelBackend
from langchain_selfamplify.models.hf_loading import check_model_source
from langchain_selfamplify.models.slm import SLM


def load_backend(model: str | None = None, *, base_url: str | None = None,
                 served_model: str | None = None, tokenizer: str | None = None,
                 generate_url: str | None = None, **kwargs: Any) -> ModelBackend:
    """The backend the options name: a served model when ``base_url`` is given, else a
    local Hugging Face model, whose generation goes to ``generate_url`` when given.

    Args:
        model: Local model (``SLM.load``: ``None`` for the embedded default, an embedded
            short name, a Hub id, a directory or a ``.gguf`` file). Ignored when
            ``base_url`` is given.
        base_url: An OpenAI-compatible API root (``http://host:port/v1``).
        served_model: The served model's name. Defaults to ``"default"`` (llama.cpp
            serves one model under any name).
        tokenizer: Tokenizer of the served model, for its chat template and exact token
            counts (a Hub id, a directory or a ``.gguf`` file).
        generate_url: An OpenAI-compatible API root serving the same model as the local
            one: the local model scores and explains, the server writes the text
            (:class:`~langchain_selfamplify.models.offload.GenerationOffload`;
            approximate). Not with ``base_url``.
        **kwargs: For a local model, :meth:`SLM.load`'s; for a served one,
            ``batch_size``, ``seed`` and ``show_progress`` are used and the rest
            (``device``) do not apply.

    Raises:
        ModelLoadError: the local model cannot be loaded.
    """
    from langchain_selfamplify.models.served import OpenAICompatibleBackend

    served = {key: kwargs[key] for key in ("batch_size", "seed", "show_progress")
              if key in kwargs}
    if base_url is not None:
        if generate_url is not None:
            raise ValueError("generate_url offloads a local model's generation; a served "
                             "model (base_url) generates on its server already")
        return OpenAICompatibleBackend(base_url, served_model or "default",
                                       tokenizer=tokenizer, **served)
    local = SLM.load(model, **kwargs)
    if generate_url is None:
        return local
    from langchain_selfamplify.models.offload import GenerationOffload

    generator = OpenAICompatibleBackend(generate_url, served_model or "default",
                                        tokenizer=tokenizer, **served)
    return GenerationOffload(local, generator)


def check_backend_source(model: str | None = None, *, base_url: str | None = None,
                         tokenizer: str | None = None, generate_url: str | None = None
                         ) -> None:
    """Fail before any long work on a model option that cannot work (see
    :func:`check_model_source`); a served model's tokenizer file must exist.

    Raises:
        ModelLoadError: naming the problem.
        ValueError: ``base_url`` or ``generate_url`` is not an http(s) URL, or both are
            given.
    """
    for option, url in (("--base-url", base_url), ("--generate-url", generate_url)):
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"{option} must be an http(s) URL, not {url!r}")
    if base_url is not None and generate_url is not None:
        raise ValueError("--generate-url offloads a local model's generation; with "
                         "--base-url the served model generates already")
    if base_url is None:
        check_model_source(model)
        return
    if tokenizer is not None:
        check_model_source(tokenizer)
