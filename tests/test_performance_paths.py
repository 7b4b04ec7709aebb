"""The fast paths give what the plain reference routes give (no timing here: the speed
is measured by ``benchmarks/``). Unit tests on the tiny random Llama; the last ones on
the embedded model."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from langchain_selfamplify import SLM, AmplifiedPrompt, SelfAmplifySelector
from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.evaluation.predict import answer_questions
from langchain_selfamplify.models import continuous_batching
from langchain_selfamplify.rationales import get_method
from langchain_selfamplify.reference_routes import (
    CAPTUM_METHODS,
    captum_word_attributions,
    generate_predictions,
    pipeline_answers,
)

EXAMPLES = [
    MCQExample(id="q1", question="Which gas do green plants absorb from the air to make food?",
               choices={"A": "oxygen", "B": "carbon dioxide", "C": "nitrogen", "D": "helium"},
               answer="B"),
    MCQExample(id="q2", question="A student drops a ball from a tall building. What pulls "
               "the ball toward the ground?",
               choices={"A": "magnetism", "B": "friction", "C": "gravity"}, answer="C"),
]
BUDGETS = {"feature_ablation": ({}, {}), "kernelshap": ({"n_samples": 24}, {"n_samples": 24}),
           "lime": ({"n_samples": 24}, {"n_samples": 24}),
           "shapley_sampling": ({"n_permutations": 2}, {"n_samples": 2})}


def _feature_scores(attribution) -> list[float]:
    return [s for w, s in zip(attribution.words, attribution.scores, strict=True)
            if w.is_candidate]


@pytest.mark.parametrize("method", CAPTUM_METHODS)
def test_perturbation_methods_equal_captum_llm_attribution(tiny_slm, method):
    ours_kwargs, captum_kwargs = BUDGETS[method]
    explainer = get_method(method)(tiny_slm, **ours_kwargs)
    for example in EXAMPLES:
        ours = _feature_scores(explainer.attribute(example))
        reference = captum_word_attributions(tiny_slm, example, method, **captum_kwargs)
        assert len(ours) == len(reference)
        assert max(map(abs, reference)) > 0  # a real signal, not two zero vectors
        assert ours == pytest.approx(reference, abs=1e-4)


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_coalition_chunks_do_not_change_attributions(tiny_model_dir, batch_size):
    """Chunk size moves the shared heads; without the prompt cache nothing is shared."""
    cached = SLM.from_pretrained(tiny_model_dir, device="cpu", show_progress=False,
                                 batch_size=batch_size)
    plain = SLM.from_pretrained(tiny_model_dir, device="cpu", show_progress=False,
                                batch_size=batch_size, prefix_cache=False)
    for example in EXAMPLES:
        fast = get_method("kernelshap")(cached, n_samples=32).attribute(example)
        slow = get_method("kernelshap")(plain, n_samples=32).attribute(example)
        assert fast.scores == pytest.approx(slow.scores, abs=1e-4)


@pytest.mark.parametrize("method", ["deeplift", "integrated_gradients", "gradient_x_input"])
def test_gradient_methods_batched_over_examples_equal_one_at_a_time(tiny_slm, method):
    kwargs = {"path_steps": 8} if method == "integrated_gradients" else {}
    explainer = get_method(method)(tiny_slm, **kwargs)
    batched = explainer.attribute_batch(EXAMPLES)
    for example, together in zip(EXAMPLES, batched, strict=True):
        alone = explainer.attribute(example)
        assert together.words == alone.words
        assert max(map(abs, alone.scores)) > 0
        assert together.scores == pytest.approx(alone.scores, rel=1e-3, abs=1e-5)


def test_pool_scoring_equals_one_token_generate(tiny_slm, demo_pool):
    pool = demo_pool[:12]
    selector = SelfAmplifySelector(examples=pool, backend=tiny_slm, n=1)
    assert [s.predicted for s in selector.score_pool()] == generate_predictions(tiny_slm, pool)


class _NoLogitsToKeep(torch.nn.Module):
    """A causal LM whose forward does not take ``logits_to_keep`` (older models)."""

    def __init__(self, model):
        super().__init__()
        self.inner = model
        self.config = model.config
        self.generation_config = model.generation_config

    def get_input_embeddings(self):
        return self.inner.get_input_embeddings()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None,
                cache=None, use_cache=None, inputs_embeds=None):
        return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                          position_ids=position_ids, cache=cache,
                          use_cache=use_cache, inputs_embeds=inputs_embeds)


def test_models_without_logits_to_keep_score_the_same(tiny_slm, demo_pool):
    legacy = SLM(_NoLogitsToKeep(tiny_slm.model), tiny_slm.tokenizer, show_progress=False,
                 batch_size=4)
    assert not legacy._takes_logits_to_keep
    pool = demo_pool[:6]
    ours = SelfAmplifySelector(examples=pool, backend=tiny_slm, n=1).score_pool()
    theirs = SelfAmplifySelector(examples=pool, backend=legacy, n=1).score_pool()
    for a, b in zip(ours, theirs, strict=True):
        assert a.probs == pytest.approx(b.probs, abs=1e-5)
    explained = get_method("feature_ablation")(legacy).attribute(EXAMPLES[0])
    reference = get_method("feature_ablation")(tiny_slm).attribute(EXAMPLES[0])
    assert explained.scores == pytest.approx(reference.scores, abs=1e-4)


@pytest.mark.integration
def test_evaluation_equals_the_langchain_pipeline_route(default_slm, demo_pool):
    """Prefix-cached, batched answers read exactly what the one-at-a-time chain reads."""
    demos = [ex.with_rationale(f"Step 1: the question is about {ex.question.split()[-1]}")
             for ex in demo_pool[:4]]
    prompt = AmplifiedPrompt(examples=demos)
    questions = demo_pool[10:16]
    ours = answer_questions(default_slm, prompt, questions, mode="generate",
                            max_rationale_tokens=16)
    reference = pipeline_answers(default_slm, prompt, questions, max_new_tokens=32)
    assert [p.rationale.strip() for p in ours] == [p.rationale.strip() for p in reference]
    assert [p.predicted for p in ours] == [p.predicted for p in reference]


@pytest.mark.integration
def test_perturbation_equals_captum_on_the_embedded_model(default_slm, demo_pool):
    example = demo_pool[0]
    ours = _feature_scores(get_method("feature_ablation")(default_slm).attribute(example))
    reference = captum_word_attributions(default_slm, example, "feature_ablation")
    assert ours == pytest.approx(reference, abs=1e-4)


@pytest.mark.parametrize("slots", [1, 3, 64])
def test_continuous_batching_equals_generate_one_prompt_at_a_time(tiny_model_dir, demo_pool,
                                                                    slots):
    """Slots freed by finished replies are refilled; each reply is still what
    ``model.generate`` gives for its prompt alone (stop strings, end token, cap)."""
    slm = SLM.from_pretrained(tiny_model_dir, device="cpu", show_progress=False,
                              decode_slots=slots)
    plain = SLM.from_pretrained(tiny_model_dir, device="cpu", show_progress=False,
                                prefix_cache=False)  # model.generate, one prompt at a time
    assert slm.shares_prefix
    prompt = AmplifiedPrompt(examples=[ex.with_rationale("Step 1: look.") for ex in demo_pool[:3]])
    texts = [slm.format_prompt(prompt.to_messages(q)) for q in demo_pool[10:17]]
    free = slm.generate(texts, max_new_tokens=12)
    assert free == [plain.generate([text], max_new_tokens=12)[0] for text in texts]
    assert len(set(free)) > 1
    # Stop at a character the free replies contain, so some replies end early.
    stop = [next(c for c in "".join(free) if c.isalpha())]
    stopped = slm.generate(texts, max_new_tokens=12, stop=stop)
    assert stopped == [plain.generate([text], max_new_tokens=12, stop=stop)[0] for text in texts]
    assert stopped != free


@pytest.mark.parametrize("prefix_cache", [True, False])
def test_each_reply_is_handed_over_as_soon_as_it_ends(tiny_model_dir, demo_pool, prefix_cache):
    """``generate``'s ``on_reply`` gets every reply it returns: as its slot frees, before
    the last decoding step, with continuous batching; as its batch ends without."""
    slm = SLM.from_pretrained(tiny_model_dir, device="cpu", show_progress=False,
                              decode_slots=2, prefix_cache=prefix_cache)  # False: generate()
    prompt = AmplifiedPrompt(examples=[ex.with_rationale("Step 1: look.") for ex in demo_pool[:3]])
    texts = [slm.format_prompt(prompt.to_messages(q)) for q in demo_pool[10:16]]
    handed: dict[int, str] = {}
    steps_then: list[int] = []

    def keep(index: int, reply: str) -> None:
        handed[index] = reply
        steps_then.append(slm.decode_stats.steps)

    slm.decode_stats.reset()
    returned = slm.generate(texts, max_new_tokens=10, on_reply=keep)
    assert handed == dict(enumerate(returned)) and len(steps_then) == len(texts)
    if prefix_cache:
        assert steps_then[0] < slm.decode_stats.steps


def test_the_decoding_bar_shows_tokens_written_before_any_reply_ends(tiny_model_dir, demo_pool,
                                                                     monkeypatch):
    """With many slots the first reply can take an hour on a CPU: each step updates the
    bar's postfix, so it moves before the count of finished replies does."""
    import langchain_selfamplify.models.generation as generation

    events: list[tuple[str, object]] = []

    class RecordingBar:
        def __init__(self, *args, **kwargs):
            self.disable = kwargs.get("disable", False)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n=1):
            events.append(("done", n))

        def set_postfix(self, values, refresh=True):
            events.append(("postfix", dict(values)))

    monkeypatch.setattr(generation, "tqdm", RecordingBar)
    slm = SLM.from_pretrained(tiny_model_dir, device="cpu", show_progress=True, decode_slots=4)
    prompt = AmplifiedPrompt(examples=[ex.with_rationale("Step 1: look.") for ex in demo_pool[:3]])
    texts = [slm.format_prompt(prompt.to_messages(q)) for q in demo_pool[10:14]]
    slm.decode_stats.reset()
    slm.generate(texts, max_new_tokens=8, desc="Writing")
    assert events[0][0] == "postfix"  # a step shown before the first reply ended
    postfixes = [values for kind, values in events if kind == "postfix"]
    stats = slm.decode_stats
    assert postfixes[-1] == {"steps": stats.steps,
                             "tokens": sum(rows * n for rows, n in stats.steps_by_rows.items())}
    assert sum(n for kind, n in events if kind == "done") == len(texts)


def test_consecutive_prompts_run_only_what_follows_their_common_head(tiny_model_dir,
                                                                     demo_pool):
    """One prompt at a time (a DSPy program's calls): the second prompt's shared head
    with the first is taken from the kept cache, and the replies are the plain ones."""
    slm = SLM.from_pretrained(tiny_model_dir, device="cpu", show_progress=False)
    plain = SLM.from_pretrained(tiny_model_dir, device="cpu", show_progress=False,
                                prefix_cache=False)
    prompt = AmplifiedPrompt(examples=[ex.with_rationale("Step 1: look.") for ex in demo_pool[:3]])
    texts = [slm.format_prompt(prompt.to_messages(q)) for q in demo_pool[10:13]]
    fed: list[int] = []
    forward = slm.model.forward

    def counting(*args, **kwargs):
        fed.append(int(kwargs["input_ids"].shape[-1]) * int(kwargs["input_ids"].shape[0]))
        return forward(*args, **kwargs)

    slm.model.forward = counting
    replies = [slm.generate([text], max_new_tokens=6)[0] for text in texts]
    assert replies == [plain.generate([text], max_new_tokens=6)[0] for text in texts]
    lengths = [slm.count_tokens(text) for text in texts]
    # Without reuse every prompt is run whole (sum(lengths) and more). The three
    # demonstrations are most of each prompt, so with reuse the 2nd and 3rd cost far less.
    assert sum(fed) < lengths[0] + 0.5 * (lengths[1] + lengths[2])


class _TwoPasses:
    """The model without its fused ``generate_then_score``: the reference route."""

    def __init__(self, slm):
        self._slm = slm

    @property
    def capabilities(self):
        return dataclasses.replace(self._slm.capabilities, fused_generate_score=False)

    def __getattr__(self, name):
        return getattr(self._slm, name)


@pytest.mark.parametrize("slots", [1, 3, 64])
def test_answers_read_in_the_decoding_pass_equal_a_second_pass(tiny_model_dir, demo_pool,
                                                               slots):
    """The labels read where a reply's slot is fed the follow-up equal those of scoring
    the follow-up prompt on its own, also when the reply is cut at a stop string in the
    middle of a token or re-tokenised differently (the slot then rolls back)."""
    slm = SLM.from_pretrained(tiny_model_dir, device="cpu", show_progress=False,
                              decode_slots=slots)
    prompt = AmplifiedPrompt(examples=[ex.with_rationale("Step 1: look.") for ex in demo_pool[:3]])
    questions = demo_pool[10:17]
    texts = [slm.format_prompt(prompt.to_messages(q), "Step 1:") for q in questions]
    free = slm.generate(texts, max_new_tokens=12)
    stop = [next(c for c in "".join(free) if c.isalpha())]
    labels = [q.labels for q in questions]
    for cut in (None, stop):
        replies = slm.generate(texts, max_new_tokens=12, stop=cut)

        def follow_up(index, reply):
            return f"{texts[index]}{reply.strip()}\nThe answer is ("

        fused = slm.generate_then_score(texts, follow_up, labels, max_new_tokens=12, stop=cut)
        assert [reply for reply, _ in fused] == replies
        reference = slm.score_choices([follow_up(i, r) for i, r in enumerate(replies)], labels)
        for (_, ours), theirs in zip(fused, reference, strict=True):
            assert ours.labels == theirs.labels
            assert ours.log_probs == pytest.approx(theirs.log_probs, abs=1e-4)
    assert sum(r != f for r, f in zip(replies, free, strict=True)) > 0  # the stop cut some


def test_follow_ups_cost_no_decoding_steps(tiny_model_dir, demo_pool, monkeypatch):
    """Reading answers after the replies takes the decoding steps of the replies alone:
    the follow-ups' tokens (many on a random model, whose replies re-tokenise
    differently) are fed in passes of their own, a group of finished rows per pass."""
    monkeypatch.setattr(continuous_batching, "FOLLOW_UP_SHARE", 4)  # groups of 2 of 8 slots
    slm = SLM.from_pretrained(tiny_model_dir, device="cpu", show_progress=False,
                              decode_slots=8)
    prompt = AmplifiedPrompt(examples=[ex.with_rationale("Step 1: look.") for ex in demo_pool[:3]])
    questions = demo_pool[10:26]
    texts = [slm.format_prompt(prompt.to_messages(q), "Step 1:") for q in questions]
    stats = slm.decode_stats
    stats.reset()
    replies = slm.generate(texts, max_new_tokens=12)
    generate_steps, prefills = stats.steps, stats.prefills
    assert stats.follow_up_passes == stats.follow_up_tokens == 0
    # every step is timed under the rows it decoded, never more than the slots
    assert sum(stats.steps_by_rows.values()) == generate_steps
    assert max(stats.steps_by_rows) == 8 and set(stats.step_seconds) == set(stats.steps_by_rows)
    assert stats.seconds_per_step(8) > 0 and stats.seconds_per_step(9) is None
    stats.reset()
    fused = slm.generate_then_score(texts, lambda i, reply: f"{texts[i]}{reply}\nThe answer is (",
                                    [q.labels for q in questions], max_new_tokens=12)
    assert [reply for reply, _ in fused] == replies
    assert stats.steps == generate_steps and stats.prefills == prefills
    assert stats.follow_up_tokens >= len(questions) * len(slm.tokenize(["\nThe answer is ("])[0])
    # rows are fed in groups of at least a quarter of the slots (2), the last one aside
    assert 1 <= stats.follow_up_passes <= len(questions) // 2 + 1


def test_evaluation_reads_the_same_answers_fused_or_in_two_passes(tiny_slm, demo_pool):
    prompt = AmplifiedPrompt(examples=[ex.with_rationale("Step 1: look.") for ex in demo_pool[:3]])
    questions = demo_pool[10:18]
    fused = answer_questions(tiny_slm, prompt, questions, max_rationale_tokens=10)
    reference = answer_questions(_TwoPasses(tiny_slm), prompt, questions,
                                 max_rationale_tokens=10)
    assert [p.rationale for p in fused] == [p.rationale for p in reference]
    assert [p.predicted for p in fused] == [p.predicted for p in reference]
    for ours, theirs in zip(fused, reference, strict=True):
        assert list(ours.probs.values()) == pytest.approx(list(theirs.probs.values()),
                                                          abs=1e-5)


@pytest.mark.parametrize("route", ["fused", "two passes", "generate"])
def test_each_prediction_is_handed_over_as_soon_as_it_is_read(tiny_model_dir, demo_pool, route):
    """``on_prediction`` gets each answer while the others are still being decoded (so a
    checkpoint can keep it), and gets every answer ``answer_questions`` returns: on the
    fused pass, on the two-pass route (a served or chat model, an offload, the cloze
    format), and in generate mode."""
    slm = SLM.from_pretrained(tiny_model_dir, device="cpu", show_progress=False,
                              decode_slots=2)
    backend = _TwoPasses(slm) if route == "two passes" else slm
    mode = "generate" if route == "generate" else "score"
    prompt = AmplifiedPrompt(examples=[ex.with_rationale("Step 1: look.") for ex in demo_pool[:3]])
    questions = demo_pool[10:18]
    handed, steps_then = [], []

    def keep(prediction):
        handed.append(prediction)
        steps_then.append(slm.decode_stats.steps)

    slm.decode_stats.reset()
    returned = answer_questions(backend, prompt, questions, max_rationale_tokens=10, mode=mode,
                                on_prediction=keep)
    assert sorted(handed, key=lambda p: p.id) == sorted(returned, key=lambda p: p.id)
    assert [p.id for p in returned] == [q.id for q in questions]
    assert steps_then[0] < slm.decode_stats.steps  # before the last decoding step
    unheard = answer_questions(backend, prompt, questions, max_rationale_tokens=10, mode=mode)
    # Scored one at a time or in batches at the end: the same answers.
    assert [p.rationale for p in unheard] == [p.rationale for p in returned]
    assert [p.predicted for p in unheard] == [p.predicted for p in returned]
    for alone, batched in zip(returned, unheard, strict=True):
        assert list(alone.probs.values()) == pytest.approx(list(batched.probs.values()),
                                                           abs=1e-5)


def test_a_prediction_callback_may_run_the_model_while_the_others_are_decoded(tiny_model_dir,
                                                                           demo_pool):
    """The fused pass hands each answer over mid-decoding; a callback that runs the
    model then (a caller scoring something of its own) gets the model's own answers, and
    the decoding goes on unchanged."""
    slm = SLM.from_pretrained(tiny_model_dir, device="cpu", show_progress=False,
                              decode_slots=2)
    prompt = AmplifiedPrompt(examples=[ex.with_rationale("Step 1: look.") for ex in demo_pool[:3]])
    questions = demo_pool[10:18]
    probe = [slm.format_prompt([{"role": "user", "content": demo_pool[20].question}],
                               "The answer is (")]
    alone = slm.score_choices(probe, [demo_pool[20].labels])[0].probs
    reference = answer_questions(slm, prompt, questions, max_rationale_tokens=10)
    during: list[list[float]] = []
    steps_then: list[int] = []

    def run_the_model(prediction):
        steps_then.append(slm.decode_stats.steps)
        during.append(slm.score_choices(probe, [demo_pool[20].labels])[0].probs)

    slm.decode_stats.reset()
    answered = answer_questions(slm, prompt, questions, max_rationale_tokens=10,
                                on_prediction=run_the_model)
    assert steps_then[0] < slm.decode_stats.steps  # called while others were decoding
    assert [p.rationale for p in answered] == [p.rationale for p in reference]
    assert [p.predicted for p in answered] == [p.predicted for p in reference]
    for probs in during:
        assert probs == pytest.approx(alone, abs=1e-5)
