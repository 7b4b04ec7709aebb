"""A served model: the embedded SmolLM2 GGUF behind a real llama.cpp server (xllamacpp)
on 127.0.0.1, reached through langchain-openai. Nothing leaves loopback."""

from __future__ import annotations

import http.server
import json
import re
import threading

import pytest
from typer.testing import CliRunner

from langchain_selfamplify import (
    AmplifiedPrompt,
    AutoCoT,
    BackendCapabilityError,
    BackendConnectionError,
    GenerationOffload,
    OpenAICompatibleBackend,
    RationaleGenerator,
    SelfAmplifySelector,
)
from langchain_selfamplify.cli import app
from langchain_selfamplify.evaluation.predict import (
    answer_questions,
    rationale_cap,
    rationale_stops,
)
from langchain_selfamplify.models.embedded import default_model_path
from langchain_selfamplify.pipeline import RunConfig, run_self_amplify
from tests import llama_server

pytestmark = pytest.mark.integration

GGUF = default_model_path()


@pytest.fixture(scope="module")
def server():
    process, base_url = llama_server.start(GGUF)
    yield base_url
    llama_server.stop(process)


@pytest.fixture(scope="module")
def served(server):
    return OpenAICompatibleBackend(server, "smollm2", tokenizer=str(GGUF), show_progress=False,
                                   max_concurrency=4)


def test_selection_and_label_predictions_agree_with_the_local_backend(served, default_slm,
                                                                      demo_pool):
    """The server runs the same GGUF on its quantised weights (and quantises activations
    in its dot products); the local backend dequantises the weights to float32. Every
    label's probability agrees within a few hundredths, so predictions differ only on
    near-ties, which this near-chance model has many of (measured: 35-36 of 40 agree;
    88-89% over 328 questions in docs/results/served_agreement.md)."""
    pool = demo_pool[:40]
    local = SelfAmplifySelector(backend=default_slm, examples=pool, strategy="success", n=4)
    remote = SelfAmplifySelector(backend=served, examples=pool, strategy="success", n=4)
    local_scores, remote_scores = local.score_pool(), remote.score_pool()
    pairs = list(zip(local_scores, remote_scores))
    agree = sum(a.predicted == b.predicted for a, b in pairs)
    print(f"label predictions agree on {agree}/{len(pool)} questions")
    gap = max(abs(a.probs[label] - b.probs[label]) for a, b in pairs for label in a.probs)
    assert gap < 0.08
    for a, b in pairs:
        if a.predicted != b.predicted:
            top, second = sorted(a.probs.values(), reverse=True)[:2]
            assert top - second < 2 * gap
    assert agree / len(pool) >= 0.8
    # Success ranks by confidence: a near-tie can swap one demonstration (measured on
    # these 40: the same 4; on the whole demo pool: 3 of 4).
    assert len({ex.id for ex in local.select()} & {ex.id for ex in remote.select()}) >= 3


@pytest.mark.parametrize("method", ["ph_cot", "self_topk"])
def test_generated_rationales_on_the_served_model(served, demo_pool, method):
    generator = RationaleGenerator(backend=served, method=method, k=3)
    records: list[list[dict[str, str]]] = []
    explained = generator.explain(demo_pool[:3], on_chunk=records.append)
    assert len(explained) == 3
    for demo in explained:
        assert demo.rationale and demo.rationale.strip()
    # one batch of requests, each rationale checkpointed as its reply came back
    assert [len(chunk) for chunk in records] == [1, 1, 1]
    assert ({(r["example_id"], r["rationale"]) for chunk in records for r in chunk}
            == {(demo.id, demo.rationale) for demo in explained})


def test_auto_cot_on_the_served_model(served, demo_pool):
    prompt = AutoCoT(served, n=2, max_new_tokens=24).build(demo_pool[:8])
    assert len(prompt.examples) == 2
    assert all(demo.rationale for demo in prompt.examples)


def test_kernelshap_from_served_log_probs(served, demo_pool):
    example = demo_pool[0]
    generator = RationaleGenerator(backend=served, method="kernelshap", k=3,
                                   method_kwargs={"n_samples": 24})
    (demo,) = generator.explain([example])
    keywords = re.findall(r"'([^']+)'", demo.rationale)
    words = {w.lower().strip(".,?!()") for w in example.render().split()}
    assert demo.rationale.startswith("The 3 keywords ")
    assert demo.rationale.endswith(f"the answer is ({example.answer}).")
    assert len(keywords) == 3
    assert all(k.lower() in words for k in keywords), (keywords, words)


def test_generate_mode_answers_on_the_served_model(served, demo_pool):
    from langchain_selfamplify import AmplifiedPrompt
    from langchain_selfamplify.evaluation.predict import answer_questions

    demos = [ex.with_rationale("Step 1: read the options.") for ex in demo_pool[:2]]
    predictions = answer_questions(served, AmplifiedPrompt(examples=demos), demo_pool[2:6],
                                   mode="generate", max_rationale_tokens=32)
    assert len(predictions) == 4
    assert all(p.rationale is not None for p in predictions)
    assert all(p.predicted is None or p.predicted in "ABCD" for p in predictions)


def test_gradient_methods_and_cloze_are_refused_naming_what_works(served, demo_pool):
    with pytest.raises(BackendCapabilityError, match="kernelshap.*ph_cot"):
        RationaleGenerator(backend=served, method="deeplift")
    with pytest.raises(BackendCapabilityError, match="answer_format='letter'"):
        SelfAmplifySelector(backend=served, examples=demo_pool, answer_format="cloze")


def test_cli_main_job_and_a_small_grid_through_the_server(server, tmp_path):
    runner = CliRunner()
    common = ["--base-url", server, "--served-model", "smollm2", "--tokenizer", str(GGUF)]
    result = runner.invoke(app, ["run", *common, "--method", "self_topk", "--shots", "2",
                                 "--pool-size", "12", "--test-size", "4",
                                 "--output-dir", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["model_name"] == f"smollm2 @ {server}"
    assert len(results["self_amplify"]["predictions"]) == 4
    assert len(results["io"]["predictions"]) == 4
    # feature_ablation: one served call per word (KernelShap's 200 samples per
    # demonstration are tested on the server by test_kernelshap_from_served_log_probs)
    result = runner.invoke(app, ["evaluate", *common, "--methods", "io,feature_ablation",
                                 "--strategies", "random", "--seeds", "0", "--shots", "2",
                                 "--pool-size", "8", "--test-size", "4",
                                 "--output-dir", str(tmp_path / "grid")])
    assert result.exit_code == 0, result.output  # 0: every cell done
    cells = [json.loads(line) for line in
             (tmp_path / "grid" / "cells.jsonl").read_text().splitlines()]
    assert [(c["method"], c["status"]) for c in cells] == [("io", "done"),
                                                           ("feature_ablation", "done")]
    result = runner.invoke(app, ["explain", *common, "--method", "feature_ablation", "--k", "2",
                                 "--answer", "B", "Which gas do plants take in? (A) oxygen "
                                 "(B) carbon dioxide (C) helium"])
    assert result.exit_code == 0, result.output
    assert "top words:" in result.output and "the answer is (B)" in result.output
    result = runner.invoke(app, ["explain", *common, "--method", "deeplift", "--answer", "B",
                                 "Which? (A) x (B) y"])
    assert result.exit_code == 2 and "kernelshap" in result.output


def test_generation_offloaded_to_the_server_scores_locally(served, default_slm, demo_pool):
    """The server writes the test-time rationales; the local model scores the answers
    after them, exactly as it scores any prompt."""
    sent: list[str] = []

    class Recording:
        def generate(self, prompts, **kwargs):
            sent.extend(prompts)
            return served.generate(prompts, **kwargs)

    offload = GenerationOffload(default_slm, Recording())
    prompt = AmplifiedPrompt(examples=[ex.with_rationale("Step 1: read the question.")
                                       for ex in demo_pool[:2]])
    questions = demo_pool[20:24]
    answers = answer_questions(offload, prompt, questions, max_rationale_tokens=16)
    texts = [default_slm.format_prompt(prompt.to_messages(q), prompt.assistant_prefix())
             for q in questions]
    written = served.generate(texts, max_new_tokens=rationale_cap(default_slm, prompt, 16),
                              stop=rationale_stops(prompt))  # one step shown: stop at 2
    assert sent == texts  # every rationale was written by the server
    assert [a.rationale for a in answers] == [w.strip() for w in written]
    scored = default_slm.score_choices(
        [default_slm.format_prompt(prompt.to_messages(q), f"{w.strip()}\nThe answer is (")
         for q, w in zip(questions, written, strict=True)], [q.labels for q in questions])
    for answer, scores in zip(answers, scored, strict=True):
        assert list(answer.probs.values()) == pytest.approx(scores.probs, abs=1e-6)
    assert offload.name == default_slm.name and offload.local_model is default_slm


def test_an_offloaded_answer_is_scored_and_handed_over_as_its_reply_comes_back(
        served, default_slm, demo_pool, monkeypatch):
    """With ``on_prediction`` (the grid's checkpoint), each answer after a server-written
    rationale is scored, and handed over, as that reply comes back, not once all are
    back: a stop keeps them. The answers are those of scoring them all at the end."""
    events: list[str] = []

    class Recording:
        def generate(self, prompts, on_reply=None, **kwargs):
            def reply(index, text):
                events.append("reply")
                if on_reply is not None:
                    on_reply(index, text)
            return served.generate(prompts, on_reply=reply, **kwargs)

    scoring = default_slm.score_choices

    def counted(*args, **kwargs):
        events.append("score")
        return scoring(*args, **kwargs)

    offload = GenerationOffload(default_slm, Recording())
    prompt = AmplifiedPrompt(examples=[ex.with_rationale("Step 1: read the question.")
                                       for ex in demo_pool[:2]])
    questions = demo_pool[20:24]
    at_end = answer_questions(offload, prompt, questions, max_rationale_tokens=16)
    monkeypatch.setattr(default_slm, "score_choices", counted)
    events.clear()
    handed: list[tuple[str, int]] = []
    each = answer_questions(offload, prompt, questions, max_rationale_tokens=16,
                            on_prediction=lambda p: handed.append((p.id, len(events))))
    assert events.count("reply") == events.count("score") == len(questions)
    assert events.index("score") < len(events) - 2  # before the last reply was back
    assert handed[0][1] < len(events)
    assert sorted(h[0] for h in handed) == sorted(q.id for q in questions)
    assert [a.rationale for a in each] == [a.rationale for a in at_end]
    assert [a.predicted for a in each] == [a.predicted for a in at_end]
    for one, batch in zip(each, at_end, strict=True):
        assert list(one.probs.values()) == pytest.approx(list(batch.probs.values()), abs=1e-5)


def test_cli_grid_with_generation_offloaded(server, tmp_path):
    result = CliRunner().invoke(app, [
        "evaluate", "--generate-url", server, "--methods", "io,ph_cot", "--strategies",
        "success", "--seeds", "0", "--shots", "2", "--pool-size", "8", "--test-size", "3",
        "--output-dir", str(tmp_path / "grid")])
    assert result.exit_code == 0, result.output
    predictions = [json.loads(line) for line in
                   (tmp_path / "grid" / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 6
    refused = CliRunner().invoke(app, ["evaluate", "--generate-url", server, "--base-url",
                                       server, "--output-dir", str(tmp_path / "refused")])
    assert refused.exit_code == 2 and "--generate-url" in refused.output
    assert not (tmp_path / "refused").exists()


def test_a_server_killed_mid_run_keeps_finished_work_and_a_restart_resumes(tmp_path,
                                                                           monkeypatch):
    process, base_url = llama_server.start(GGUF, n_parallel=2)
    port = int(base_url.split(":")[2].split("/")[0])
    config = RunConfig(base_url=base_url, served_model="smollm2", tokenizer=str(GGUF),
                       method="ph_cot", shots=2, pool_size=10, test_size=4,
                       output_dir=str(tmp_path))
    backend = OpenAICompatibleBackend(base_url, "smollm2", tokenizer=str(GGUF),
                                      show_progress=False, max_retries=1, timeout=10)
    generate = backend.generate

    def crash_then_generate(*args, **kwargs):
        llama_server.stop(process)  # the server dies once the pool is scored
        return generate(*args, **kwargs)

    monkeypatch.setattr(backend, "generate", crash_then_generate)
    with pytest.raises(BackendConnectionError, match=f"127.0.0.1:{port}"):
        run_self_amplify(config, backend)
    scored = (tmp_path / "checkpoint" / "pool_scores.jsonl").read_text().splitlines()
    assert len(scored) == 10

    process, _ = llama_server.start(GGUF, port=port, n_parallel=2)
    try:
        fresh = OpenAICompatibleBackend(base_url, "smollm2", tokenizer=str(GGUF),
                                        show_progress=False)
        score_calls = []
        score = fresh.score_choices
        monkeypatch.setattr(fresh, "score_choices",
                            lambda prompts, *a, **k: score_calls.append(len(prompts))
                            or score(prompts, *a, **k))
        result = run_self_amplify(config, fresh)
    finally:
        llama_server.stop(process)
    assert len(result.self_amplify.predictions) == 4
    # the pool was not scored again: only the test questions (IO and amplified) were
    assert sum(score_calls) == 8


class _FlakyServer(http.server.BaseHTTPRequestHandler):
    """Answers 503 to the first ``failures`` requests, then a llama.cpp-style completion."""

    failures = 2
    seen = 0
    logprobs = True

    def do_POST(self):  # noqa: N802 - http.server's name
        type(self).seen += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).seen <= type(self).failures:
            self.send_response(503)
            self.end_headers()
            return
        top = [{"token": "B", "logprob": -0.1}, {"token": "A", "logprob": -2.5}]
        logprobs = ({"content": [{"token": "B", "logprob": -0.1, "top_logprobs": top}]}
                    if type(self).logprobs else None)
        body = json.dumps({"id": "x", "object": "text_completion", "created": 0, "model": "m",
                           "usage": {"prompt_tokens": 4, "completion_tokens": 1,
                                     "total_tokens": 5},
                           "choices": [{"text": "B", "index": 0, "finish_reason": "length",
                                        "logprobs": logprobs}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(("failures", "retries", "works"), [(2, 3, True), (10, 2, False)])
def test_5xx_is_retried_a_bounded_number_of_times(failures, retries, works):
    handler = type("Flaky", (_FlakyServer,), {"failures": failures, "seen": 0})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    backend = OpenAICompatibleBackend(url, "m", max_retries=retries, show_progress=False,
                                      context_length=2048)
    try:
        if works:
            (scores,) = backend.score_choices(["The answer is ("], [["A", "B", "C"]])
            assert scores.predicted == "B" and handler.seen == failures + 1
            # "C" is outside the returned top log-probs: bounded by the lowest one
            assert scores.log_probs[2] <= -2.5
        else:
            with pytest.raises(BackendConnectionError, match=url):
                backend.score_choices(["The answer is ("], [["A", "B"]])
            assert handler.seen == retries + 1
    finally:
        httpd.shutdown()


def test_a_server_without_log_probs_fails_scoring_clearly_and_still_generates():
    handler = type("NoLogprobs", (_FlakyServer,), {"failures": 0, "seen": 0,
                                                   "logprobs": False})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    backend = OpenAICompatibleBackend(url, "m", show_progress=False, context_length=2048)
    try:
        with pytest.raises(BackendConnectionError, match="no log-probabilities"):
            backend.score_choices(["The answer is ("], [["A", "B"]])
        assert backend.generate(["Say B"], max_new_tokens=4) == ["B"]
    finally:
        httpd.shutdown()


def test_a_chat_model_generates_but_refuses_to_score(server, demo_pool):
    from langchain_openai import ChatOpenAI

    from langchain_selfamplify import ChatModelBackend

    chat = ChatModelBackend(ChatOpenAI(base_url=server, api_key="none", model="smollm2",
                                       temperature=0), show_progress=False)
    records: list[list[dict[str, str]]] = []
    explained = RationaleGenerator(backend=chat, method="ph_cot").explain(
        demo_pool[:2], on_chunk=records.append)
    assert all(demo.rationale for demo in explained)
    assert [len(chunk) for chunk in records] == [1, 1]  # each checkpointed as it came back
    assert ({(r["example_id"], r["rationale"]) for chunk in records for r in chunk}
            == {(demo.id, demo.rationale) for demo in explained})
    with pytest.raises(BackendCapabilityError, match="strategy='random'"):
        SelfAmplifySelector(backend=chat, examples=demo_pool, strategy="success")
    with pytest.raises(BackendCapabilityError, match="kernelshap needs label log probs"):
        RationaleGenerator(backend=chat, method="kernelshap")
    assert len(SelfAmplifySelector(backend=chat, examples=demo_pool, strategy="random",
                                   n=3).select()) == 3


def test_dspy_programs_run_on_the_served_model_and_the_offload_wrapper(served, default_slm):
    """DSPy's engine over the project's backends: a served model, and a local model whose
    generation is offloaded to the server. Every request reaches the server."""
    dspy = pytest.importorskip("dspy")
    from langchain_selfamplify.baselines.dspy_lm import dspy_lm, engine_of

    sent: list[str] = []

    class Recording:
        def generate(self, prompts, **kwargs):
            sent.extend(prompts)
            return served.generate(prompts, **kwargs)

    for backend in (served, GenerationOffload(default_slm, Recording())):
        lm = dspy_lm(backend, max_new_tokens=24)
        with dspy.context(lm=lm):
            try:
                dspy.ChainOfThought("question -> answer")(question="What is 2 + 2?")
            except Exception as exc:  # a 135M model may not write DSPy's fields
                assert "Adapter" in type(exc).__name__ or "parse" in str(exc).lower()
        assert engine_of(lm).calls >= 1
    assert sent and all("[[ ## question ## ]]" in text for text in sent)
