"""LangChain wrappers of the local backend's in-memory model, for app developers:
``HuggingFacePipeline`` (text in, text out) and ``ChatHuggingFace``. No Hub call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_selfamplify.models.chat_format import render_chat

if TYPE_CHECKING:
    from langchain_selfamplify.models.core import ModelCore


def as_langchain_llm(core: ModelCore, max_new_tokens: int = 128, **pipeline_kwargs: Any) -> Any:
    """This model as a ``langchain_huggingface.HuggingFacePipeline`` (text in, text out).

    No Hub call: the pipeline wraps the model already in memory.
    """
    from langchain_huggingface import HuggingFacePipeline
    from transformers import pipeline

    generator = pipeline(
        "text-generation",
        model=core.model,
        tokenizer=core.tokenizer,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        return_full_text=False,
        **pipeline_kwargs,
    )
    return HuggingFacePipeline(pipeline=generator, model_id=core.name)


def as_chat_model(core: ModelCore, max_new_tokens: int = 128, **pipeline_kwargs: Any) -> Any:
    """This model as a ``langchain_huggingface.ChatHuggingFace`` chat model.

    Raises:
        ChatTemplateError: the tokenizer has no chat template.
    """
    from langchain_huggingface import ChatHuggingFace

    render_chat(core.tokenizer, [{"role": "user", "content": "x"}], "", "chat")
    return ChatHuggingFace(
        llm=as_langchain_llm(core, max_new_tokens, **pipeline_kwargs),
        tokenizer=core.tokenizer,
        model_id=core.name,
    )
