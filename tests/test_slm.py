"""The model backend on a tiny random Llama: formatting, scoring, generation, errors."""

from __future__ import annotations

import pytest
import torch

from langchain_selfamplify import SLM, ChatTemplateError, ContextLengthError, ModelLoadError
from langchain_selfamplify.models.label_scoring import ANSWER_PREFIX

QUESTION = [{"role": "user", "content": "Which gas do plants take in?\n(A) oxygen\n(B) carbon"}]


def test_chat_prompt_continues_the_assistant_prefix(tiny_slm):
    text = tiny_slm.format_prompt(QUESTION, ANSWER_PREFIX)
    assert text.endswith("<|im_start|>assistant\nThe answer is (")
    assert tiny_slm.format_prompt(QUESTION).endswith("<|im_start|>assistant\n")


def test_plain_fallback_without_chat_template(tiny_plain_model_dir):
    slm = SLM.from_pretrained(tiny_plain_model_dir, device="cpu", show_progress=False)
    assert not slm.has_chat_template
    text = slm.format_prompt(QUESTION, ANSWER_PREFIX)
    assert text.startswith("Question: Which gas") and text.endswith("Answer: The answer is (")
    with pytest.raises(ChatTemplateError, match="no chat template"):
        SLM.from_pretrained(tiny_plain_model_dir, device="cpu", chat_format="chat")
    with pytest.raises(ChatTemplateError):
        slm.as_chat_model()


def test_batched_scoring_equals_one_prompt_at_a_time(tiny_slm, demo_pool):
    prompts = [
        tiny_slm.format_prompt([{"role": "user", "content": ex.render()}], ANSWER_PREFIX)
        for ex in demo_pool[:7]
    ]
    labels = [ex.labels for ex in demo_pool[:7]]
    batched = tiny_slm.score_choices(prompts, labels)
    single = [tiny_slm.score_choices([p], [lab])[0] for p, lab in zip(prompts, labels)]
    for b, s in zip(batched, single):
        assert b.labels == s.labels
        assert torch.allclose(torch.tensor(b.probs), torch.tensor(s.probs), atol=1e-5)
        assert b.predicted == s.predicted
        # probs are the softmax over the labels of the label log-probabilities
        lp = torch.tensor(b.log_probs)
        assert b.probs == pytest.approx(torch.softmax(lp, dim=0).tolist(), abs=1e-6)


def test_label_tokens_are_distinct(tiny_slm):
    ids = tiny_slm.label_token_ids(["A", "B", "C", "D"])
    assert len(set(ids)) == 4


def test_generation_is_greedy_capped_and_batch_independent(tiny_slm, demo_pool):
    prompts = [tiny_slm.format_prompt([{"role": "user", "content": ex.render()}])
               for ex in demo_pool[:5]]
    first = tiny_slm.generate(prompts, max_new_tokens=6)
    again = tiny_slm.generate(prompts, max_new_tokens=6)
    alone = [tiny_slm.generate([p], max_new_tokens=6)[0] for p in prompts]
    assert first == again == alone
    shorter = tiny_slm.generate(prompts, max_new_tokens=3)
    for short, longer in zip(shorter, first):
        assert longer.startswith(short) and len(short) < len(longer)


def test_stop_strings_cut_the_continuation(tiny_slm):
    from langchain_selfamplify.models.backend import cut_at_stop

    assert cut_at_stop("Step 1: x. The answer is (B).", ["The answer is"]) == "Step 1: x. "
    assert cut_at_stop("no stop", ["The answer is"]) == "no stop"


def test_prompt_over_the_context_window_is_rejected(tiny_slm):
    long_prompt = tiny_slm.format_prompt([{"role": "user", "content": "word " * 3000}])
    with pytest.raises(ContextLengthError, match="accepts 1024"):
        tiny_slm.score_choices([long_prompt], [["A", "B"]])


def test_embedding_layer_is_exposed(tiny_slm):
    layer = tiny_slm.embedding_layer
    assert layer is tiny_slm.model.get_input_embeddings()
    ids = torch.tensor([[1, 2, 3]])
    assert torch.equal(layer(ids), tiny_slm.model.model.embed_tokens(ids))


def test_loading_errors_are_clear(tmp_path):
    with pytest.raises(ModelLoadError, match="GGUF file not found"):
        SLM.from_pretrained(tmp_path / "missing.gguf")
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"NOPE" + b"\0" * 64)
    with pytest.raises(ModelLoadError, match="not a GGUF file"):
        SLM.from_pretrained(fake)
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(b"GGUF\x03\x00\x00\x00")
    with pytest.raises(ModelLoadError, match="Could not load model"):
        SLM.from_pretrained(truncated)
    with pytest.raises(ModelLoadError, match="Could not load model"):
        SLM.from_pretrained(tmp_path / "no-such-model-dir")


def few_shot_prompts(slm, demo_pool, prefix):
    from langchain_selfamplify import AmplifiedPrompt, load_demo_set

    prompt = AmplifiedPrompt(examples=[ex.with_rationale("Step 1: think.") for ex in demo_pool[:3]])
    return [slm.format_prompt(prompt.to_messages(q), prefix) for q in load_demo_set("test")[:6]]


def test_prefix_cached_scoring_equals_full_prompts(tiny_slm, demo_pool, monkeypatch):
    prompts = few_shot_prompts(tiny_slm, demo_pool, ANSWER_PREFIX)
    labels = [["A", "B", "C", "D"]] * len(prompts)
    assert tiny_slm.shared_prefix_length(tiny_slm.tokenize(prompts)) > 32
    cached = tiny_slm.score_choices(prompts, labels)
    monkeypatch.setattr(tiny_slm, "prefix_cache", False)
    full = tiny_slm.score_choices(prompts, labels)
    for c, f in zip(cached, full):
        assert c.predicted == f.predicted
        assert torch.allclose(torch.tensor(c.probs), torch.tensor(f.probs), atol=1e-5)


def test_prefix_cached_generation_equals_full_prompts(tiny_slm, demo_pool, monkeypatch):
    prompts = few_shot_prompts(tiny_slm, demo_pool, "")
    cached = tiny_slm.generate(prompts, max_new_tokens=8)
    monkeypatch.setattr(tiny_slm, "prefix_cache", False)
    assert tiny_slm.generate(prompts, max_new_tokens=8) == cached


def test_no_deprecated_transformers_api_in_scoring_generation_or_explainers(tiny_slm,
                                                                            demo_pool, caplog):
    import logging
    import warnings

    from transformers.utils import logging as hf_logging

    from langchain_selfamplify import AmplifiedPrompt, RationaleGenerator
    from langchain_selfamplify.evaluation.predict import answer_questions

    logging.Logger.warning_once.cache_clear()  # type: ignore[attr-defined]
    hf_logging.enable_propagation()
    prompt = AmplifiedPrompt(examples=[demo_pool[0].with_rationale("Step 1: it is so.")])
    with warnings.catch_warnings(), caplog.at_level(logging.WARNING):
        warnings.simplefilter("error", DeprecationWarning)
        warnings.simplefilter("error", FutureWarning)
        answer_questions(tiny_slm, prompt, demo_pool[1:4], max_rationale_tokens=4)
        for answer_format in ("letter", "cloze"):
            cloze = prompt.model_copy(update={"answer_format": answer_format})
            answer_questions(tiny_slm, cloze, demo_pool[1:3], max_rationale_tokens=4)
        tiny_slm.generate(["Hello there", "General"], max_new_tokens=3)  # no shared prefix
        for method, settings in (("kernelshap", {"n_samples": 64}), ("feature_ablation", {}),
                                 ("deeplift", {})):  # enough coalitions to extend cached heads
            RationaleGenerator(backend=tiny_slm, method=method, k=2,
                               method_kwargs=settings).explain(demo_pool[:2])
    deprecated = [r.getMessage() for r in caplog.records if "deprecat" in r.getMessage()]
    assert deprecated == []
