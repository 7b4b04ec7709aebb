"""The cloze answer format, fixed test sets across seeds, and the protocol fixes."""

from __future__ import annotations

import json

import pytest
import torch

from langchain_selfamplify import AmplifiedPrompt, MCQExample, RationaleGenerator
from langchain_selfamplify.baselines.auto_cot import count_steps, explicit_answer
from langchain_selfamplify.models.answer_formats import score_answers, score_continuations
from langchain_selfamplify.prompting.messages import CLOZE_PREFIX, few_shot_messages

# ----------------------------------------------------------------- cloze scoring


def _one_at_a_time(slm, prompt: str, continuation: str) -> float:
    """Sum of the continuation's token log-probs, the prompt run alone, no cache."""
    context = slm.tokenize([prompt])[0]
    target = slm.tokenizer.encode(continuation, add_special_tokens=False)
    ids = torch.tensor([context + target])
    with torch.no_grad():
        log_probs = torch.log_softmax(slm.model(input_ids=ids).logits[0].float(), dim=-1)
    return sum(float(log_probs[len(context) - 1 + i, token]) for i, token in enumerate(target))


def test_cloze_scores_equal_token_log_probs_summed_one_prompt_at_a_time(tiny_slm, demo_pool):
    demos = demo_pool[:2]
    questions = demo_pool[2:5]
    prompts = [tiny_slm.format_prompt(few_shot_messages(demos, q, answer_format="cloze"),
                                      CLOZE_PREFIX) for q in questions]
    continuations = [[f" {text}" for text in q.choices.values()] for q in questions]
    batched = score_continuations(tiny_slm, prompts, continuations)
    for prompt, texts, row in zip(prompts, continuations, batched):
        for text, value in zip(texts, row):
            assert value == pytest.approx(_one_at_a_time(tiny_slm, prompt, text), abs=1e-4)
    scores = score_answers(tiny_slm, prompts, [q.choices for q in questions], "cloze")
    for score, row in zip(scores, batched):
        assert score.log_probs == pytest.approx(row)


def test_cloze_passes_keep_within_the_token_budget(tiny_slm, demo_pool, monkeypatch):
    """A question's choices run in one pass, and a pass's rows x widest row stays within
    ``prefill_tokens`` (long prompts with no shared prefix are wide), with the scores of
    unbounded passes."""
    from langchain_selfamplify.models import answer_formats

    questions = demo_pool[2:10]
    prompts = [tiny_slm.format_prompt(few_shot_messages(demo_pool[:2], q,
                                                        answer_format="cloze"), CLOZE_PREFIX)
               + f" {i}" for i, q in enumerate(questions)]  # no prefix shared to the end
    continuations = [[f" {text}" for text in q.choices.values()] for q in questions]
    full = score_continuations(tiny_slm, prompts, continuations)
    token_lists = tiny_slm.tokenize(prompts)
    shared = tiny_slm.shared_prefix_length(token_lists)
    widest = max(len(tokens) - shared for tokens in token_lists) + 8
    budget = 2 * len(continuations[0]) * widest
    passes: list[tuple[int, int]] = []
    run = answer_formats.continuation_log_probs

    def counted(core, rows, targets, shared):
        width = max(len(r) + len(t) for r, t in zip(rows, targets, strict=True)) - shared
        passes.append((len(rows), width))
        return run(core, rows, targets, shared)

    monkeypatch.setattr(answer_formats, "prefill_tokens", lambda model, device: budget)
    monkeypatch.setattr(answer_formats, "continuation_log_probs", counted)
    bounded = score_continuations(tiny_slm, prompts, continuations)
    assert len(passes) >= len(questions) // 2
    assert all(rows * width <= budget and rows % len(continuations[0]) == 0
               for rows, width in passes)
    for ours, theirs in zip(bounded, full, strict=True):
        assert ours == pytest.approx(theirs, abs=1e-4)


def test_acc_norm_divides_by_the_choice_text_length_as_lm_eval_does():
    from langchain_selfamplify.models.answer_formats import acc_norm_scores

    # "Yes" (3 characters) at -3.3 and "No" (2) at -2.4: per character -1.1 vs -1.2, so
    # acc_norm picks "Yes". Dividing by " Yes" / " No" (4 and 3) would pick "No"
    # (-0.825 vs -0.8).
    assert acc_norm_scores([-3.3, -2.4], ["Yes", "No"]) == pytest.approx([-1.1, -1.2])


def test_cloze_demonstrations_end_with_the_answer_text(demo_pool):
    demo = demo_pool[0].with_rationale("Step 1: because.")
    prompt = AmplifiedPrompt(examples=[demo], answer_format="cloze")
    turn = prompt.to_messages(demo_pool[1])[1]["content"]
    assert turn.endswith(f"The answer is: {demo.answer_text}.")
    assert f"({demo.answer})" not in turn
    assert AmplifiedPrompt(examples=[demo.with_rationale(None)],
                           answer_format="cloze").assistant_prefix() == CLOZE_PREFIX


def test_cloze_prompt_survives_save_and_load(tmp_path, demo_pool):
    prompt = AmplifiedPrompt(examples=demo_pool[:1], answer_format="cloze")
    assert AmplifiedPrompt.load(prompt.save(tmp_path / "p.json")).answer_format == "cloze"


@pytest.mark.parametrize("method", ["deeplift", "kernelshap", "integrated_gradients"])
def test_cloze_attribution_explains_the_gold_text(tiny_slm, demo_pool, method):
    generator = RationaleGenerator(backend=tiny_slm, method=method, k=2, answer_format="cloze",
                                   method_kwargs={"n_samples": 8} if method == "kernelshap"
                                   else {"path_steps": 4} if method == "integrated_gradients"
                                   else {})
    (explained,) = generator.explain(demo_pool[:1])
    assert explained.rationale.endswith(f"the answer is {demo_pool[0].answer_text}.")
    # The target is the gold text's log-likelihood: scores change with the gold text.
    other = demo_pool[0].model_copy(update={"answer": next(
        label for label in demo_pool[0].labels if label != demo_pool[0].answer)})
    explainer = generator.explainer
    a = explainer.attribute(demo_pool[0]).scores  # type: ignore[attr-defined]
    b = explainer.attribute(other).scores  # type: ignore[attr-defined]
    assert a != b


# ----------------------------------------------------------------- seeds and test sets


def test_test_questions_are_fixed_across_seeds_and_pools_differ(tmp_path):
    from langchain_selfamplify.data.loaders import load_pool_and_test

    rows = [{"id": f"r{i}", "question": f"Question {i}?",
             "choices": {"label": ["A", "B"], "text": [f"yes {i}", f"no {i}"]},
             "answerKey": "A"} for i in range(60)]
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    pool0, test0 = load_pool_and_test(str(path), pool_size=10, test_size=200, seed=0)
    pool1, test1 = load_pool_and_test(str(path), pool_size=10, test_size=200, seed=1)
    assert [q.id for q in test0] == [q.id for q in test1]
    assert len(test0) == 40  # every question outside the pool region (twice the pool)
    assert {q.id for q in pool0} != {q.id for q in pool1}
    assert not ({q.id for q in pool0 + pool1} & {q.id for q in test0})


def test_grid_defaults_are_three_seeds_and_200_questions():
    from langchain_selfamplify.evaluation.grid import GridConfig

    config = GridConfig()
    assert (config.seeds, config.test_size) == ([0, 1, 2], 200)


# ----------------------------------------------------------------- protocol fixes


def test_test_time_rationales_are_capped_no_shorter_than_the_demonstrations(tiny_slm,
                                                                            demo_pool):
    from langchain_selfamplify.evaluation.predict import rationale_cap

    long = "Step 1: " + "because the words say so " * 12
    prompt = AmplifiedPrompt(examples=[demo_pool[0].with_rationale(long)])
    length = len(tiny_slm.tokenizer.encode(long, add_special_tokens=False))
    assert rationale_cap(tiny_slm, prompt, 8) >= length
    assert rationale_cap(tiny_slm, prompt, 400) == 400
    assert rationale_cap(tiny_slm, AmplifiedPrompt(examples=demo_pool[:1]), 8) == 8


def test_auto_cot_needs_an_explicit_final_answer_and_does_not_count_the_trigger():
    question = MCQExample(id="q", question="Which?", choices={"A": "red", "B": "blue"},
                          answer="A")
    assert explicit_answer("Let's think step by step. The options are (A) red and (B) blue.",
                           question) is None
    assert explicit_answer("Red is warm. So the answer is (B).", question) == "B"
    assert explicit_answer("Blue is cold. The answer is: red.", question) == "A"
    assert explicit_answer("The answer is purple.", question) is None
    assert count_steps("Let's think step by step. One. Two.") == 2


def test_amplify_scores_every_example_with_a_proxy_that_did_not_train_on_it(monkeypatch,
                                                                            demo_pool):
    from langchain_selfamplify.baselines.amplify import Amplify

    trained_on: list[set[str]] = []

    def fake_train(self, pool):
        trained_on.append({ex.id for ex in pool})
        return len(trained_on) - 1  # stands for the proxy

    monkeypatch.setattr(Amplify, "train_proxy", fake_train)
    pool = demo_pool[:20]
    proxy_of = Amplify(backend=None, folds=4).train_out_of_fold(pool)
    assert len(trained_on) == 4 and set(proxy_of) == {ex.id for ex in pool}
    for example_id, proxy in proxy_of.items():
        assert example_id not in trained_on[proxy]  # type: ignore[index]


def test_an_unusable_rationale_moves_to_the_next_ranked_example(tiny_slm, demo_pool):
    from langchain_selfamplify import SelfAmplifySelector

    selector = SelfAmplifySelector(backend=tiny_slm, examples=demo_pool[:10], strategy="random",
                                   n=3)
    generator = RationaleGenerator(backend=tiny_slm, method="self_topk", k=2)
    first = selector.select()
    bad = first[1].id
    real = generator.explainer.explain_each
    # the method's replies, one of them refused (none handed over before the batch ends)
    generator.explainer.explain_each = lambda examples, **_: [  # type: ignore[method-assign]
        None if ex.id == bad else text for ex, text in zip(examples, real(examples))]
    explained, skipped = generator.explain_selection(selector)
    assert bad in skipped and bad not in [d.id for d in explained]
    assert len(explained) == 3 and all(d.rationale for d in explained)
    # explain_usable leaves it out instead of raising, and names it
    usable, left_out = generator.explain_usable(first)
    assert left_out == [bad] and [d.id for d in usable] == [ex.id for ex in first
                                                            if ex.id != bad]


# ----------------------------------------------------------------- word absence


def test_word_absence_is_one_choice_for_every_method(tiny_slm, demo_pool):
    from langchain_selfamplify.rationales.absence import mask_token_id

    example = demo_pool[0]
    for method in ("deeplift", "kernelshap"):
        generator = RationaleGenerator(backend=tiny_slm, method=method, k=2)
        assert generator.explainer.word_absence == "mask"
    with pytest.raises(ValueError, match="cannot delete words"):
        RationaleGenerator(backend=tiny_slm, method="deeplift", word_absence="delete")
    # Deleting words in KernelShap coalitions: a coalition that keeps every word scores
    # exactly the prompt; one that drops a word scores the prompt without its tokens.
    deleting = RationaleGenerator(backend=tiny_slm, method="kernelshap", k=2,
                                  word_absence="delete").explainer
    prompt = deleting.question_prompt(example)  # type: ignore[attr-defined]
    features = [i for i, w in enumerate(prompt.words) if w.is_candidate]
    target = deleting.target_tokens(example)  # type: ignore[attr-defined]
    value = deleting._deletion_value(prompt.input_ids, prompt.word_of_token,  # type: ignore
                                     features, target)
    masking = RationaleGenerator(backend=tiny_slm, method="kernelshap", k=2).explainer
    masked_value = masking._coalition_value(prompt.input_ids, prompt.word_of_token,  # type: ignore
                                            features, target)
    everything = torch.ones(1, len(features))
    assert float(value(everything)[0]) == pytest.approx(float(masked_value(everything)[0]),
                                                        abs=1e-4)
    first_out = everything.clone()
    first_out[0, 0] = 0
    kept = [t for t, w in zip(prompt.input_ids, prompt.word_of_token) if w != features[0]]
    masked = [mask_token_id(tiny_slm.tokenizer) if w == features[0] else t
              for t, w in zip(prompt.input_ids, prompt.word_of_token)]
    for fn, ids in ((value, kept), (masked_value, masked)):
        with torch.no_grad():
            full = torch.tensor([ids + target])
            log_probs = torch.log_softmax(tiny_slm.model(input_ids=full).logits[0], dim=-1)
        expected = sum(float(log_probs[len(ids) - 1 + i, t]) for i, t in enumerate(target))
        assert float(fn(first_out)[0]) == pytest.approx(expected, abs=1e-4)
