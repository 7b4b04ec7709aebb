"""The backend interface: every backend implements ModelBackend, capabilities are
declared (never assumed), tensors are reached through ``require_local``, chat prompts
stay messages, and the renamed names keep working for one release."""

from __future__ import annotations

import importlib
import sys
import warnings

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from langchain_selfamplify import (
    BackendCapabilityError,
    ChatModelBackend,
    GenerationOffload,
    ModelBackend,
    RationaleGenerator,
    SelfAmplifySelector,
)
from langchain_selfamplify.models import ChatPrompt, require_local
from langchain_selfamplify.rationales.base import build_method


def test_the_local_chat_and_offload_backends_implement_the_protocol(tiny_slm):
    chat = ChatModelBackend(FakeListChatModel(responses=["x"]))
    offload = GenerationOffload(tiny_slm, chat)
    for backend in (tiny_slm, chat, offload):
        assert isinstance(backend, ModelBackend)
    assert require_local(tiny_slm, "test") is tiny_slm
    assert require_local(offload, "test") is tiny_slm
    assert tiny_slm.capabilities.fused_generate_score
    # The offload generates on the server, so its answers are scored in a second pass.
    assert not offload.capabilities.fused_generate_score
    assert offload.capabilities.token_ids and offload.lock is tiny_slm.lock


class _Echo(BaseChatModel):
    """A chat model that answers each conversation with its last message, so a reply
    names the prompt it belongs to."""

    @property
    def _llm_type(self) -> str:
        return "echo"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        return ChatResult(generations=[
            ChatGeneration(message=AIMessage(content=f"re: {messages[-1].content}"))])


def test_a_chat_model_hands_each_reply_over_as_it_comes_back_and_returns_them_in_order():
    chat = ChatModelBackend(_Echo(), max_concurrency=3, show_progress=False)
    prompts = [chat.format_prompt([{"role": "user", "content": f"q{i}"}]) for i in range(7)]
    handed: dict[int, str] = {}
    returned = chat.generate(prompts, on_reply=handed.__setitem__)
    assert returned == [f"re: q{i}" for i in range(7)]
    assert handed == dict(enumerate(returned))


def test_a_backend_without_tensors_is_refused_by_name_where_tensors_are_needed():
    chat = ChatModelBackend(FakeListChatModel(responses=["x"]), name="remote")
    with pytest.raises(BackendCapabilityError, match="token ids.*'remote'"):
        require_local(chat, "faithfulness_report")
    with pytest.raises(BackendCapabilityError, match="deeplift needs"):
        build_method(chat, "deeplift")


def test_chat_prompts_stay_messages_and_reach_the_chat_model_as_messages():
    model = FakeListChatModel(responses=["Step 1: it is B."])
    chat = ChatModelBackend(model, system_prompt="Be brief.")
    prompt = chat.format_prompt([{"role": "user", "content": "Which? (A) x (B) y"}],
                                "Step 1:")
    assert isinstance(prompt, ChatPrompt)
    assert prompt.messages == [{"role": "system", "content": "Be brief."},
                               {"role": "user", "content": "Which? (A) x (B) y"}]
    assert prompt.assistant_prefix == "Step 1:"
    assert chat.count_tokens(prompt) == -(-len("Be brief.Which? (A) x (B) yStep 1:") // 3)
    # The reply repeats the prefix; it is removed, as the prefix was sent as a message.
    assert chat.generate([prompt]) == [" it is B."]
    with pytest.raises(TypeError, match="ChatPrompts of its own format_prompt"):
        chat.generate(["rendered text"])


def test_a_text_backend_renders_a_chat_prompt_it_is_handed(tiny_slm):
    messages = [{"role": "user", "content": "Which? (A) x (B) y"}]
    text = tiny_slm.format_prompt(messages, "The answer is (")
    as_chat = ChatPrompt.of(messages, "The answer is (")
    assert tiny_slm.tokenize([as_chat]) == tiny_slm.tokenize([text])
    assert tiny_slm.count_tokens(as_chat) == tiny_slm.count_tokens(text)


def test_slm_keyword_still_works_with_a_deprecation_warning(tiny_slm, demo_pool):
    with pytest.warns(DeprecationWarning, match="slm= is deprecated"):
        selector = SelfAmplifySelector(slm=tiny_slm, examples=demo_pool[:8],
                                       strategy="random", n=2)
    assert selector.backend is tiny_slm
    with pytest.warns(DeprecationWarning, match="slm is deprecated"):
        assert selector.slm is tiny_slm
    with pytest.warns(DeprecationWarning, match="slm= is deprecated"):
        generator = RationaleGenerator(slm=tiny_slm, method="ph_cot")
    assert generator.backend is tiny_slm
    with pytest.warns(DeprecationWarning, match="slm= is deprecated"):
        method = build_method(slm=tiny_slm, name="kernelshap")
    assert method.backend is tiny_slm
    from langchain_selfamplify.rationales.methods.kernelshap import KernelShapRationale

    with pytest.warns(DeprecationWarning, match="slm= is deprecated"):
        assert KernelShapRationale(slm=tiny_slm, k=2).backend is tiny_slm
    with pytest.raises(TypeError, match="both slm= and backend="):
        SelfAmplifySelector(slm=tiny_slm, backend=tiny_slm, examples=demo_pool[:8],
                            strategy="random", n=2)


@pytest.mark.parametrize(("old", "new", "name"), [
    ("langchain_selfamplify.models.answer_scoring", "langchain_selfamplify.models.answer_formats",
     "score_answers"),
    ("langchain_selfamplify.models.default", "langchain_selfamplify.models.embedded",
     "EMBEDDED_MODELS"),
    ("langchain_selfamplify.models.loading", "langchain_selfamplify.models.hf_loading",
     "load_model_and_tokenizer"),
    ("langchain_selfamplify.models.decoding",
     "langchain_selfamplify.models.continuous_batching", "greedy_decode_shared_prefix"),
    ("langchain_selfamplify.references", "langchain_selfamplify.reference_routes",
     "captum_word_attributions"),
])
def test_renamed_modules_still_import_with_a_deprecation_warning(old, new, name):
    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert any(issubclass(w.category, DeprecationWarning) and new in str(w.message)
               for w in caught)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)


def test_random_selection_needs_no_backend_and_ranked_selection_says_it_does(demo_pool):
    from langchain_selfamplify import SelectionError

    chosen = SelfAmplifySelector(backend=None, examples=demo_pool[:8], strategy="random",
                                 n=2).select()
    assert len(chosen) == 2
    with pytest.raises(SelectionError, match="pass backend="):
        SelfAmplifySelector(backend=None, examples=demo_pool[:8], strategy="success", n=2)


def test_the_runnables_still_describe_themselves_in_json_schema():
    """A backend field is opaque in a schema (LangChain tools and servers read these)."""
    for runnable in (RationaleGenerator, SelfAmplifySelector):
        schema = runnable.model_json_schema()
        assert "backend" in schema["properties"]
