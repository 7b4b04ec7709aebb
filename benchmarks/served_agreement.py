"""Served against local: the embedded SmolLM2 GGUF behind a real llama.cpp server
(xllamacpp, loopback) and the same file dequantised in-process (``SLM``).

On the same zero-shot letter prompts (rendered with the same chat template, and
tokenised identically) it measures how often the two predict the same label, the
largest difference of a label probability, and how close to a tie the disagreements
are; and whether success selection picks the same demonstrations. Also the wall time
of both for the same questions (one process each, two cores shared).

Run: ``python benchmarks/served_agreement.py`` (a few minutes). Writes
``docs/results/served_agreement.{json,md}``.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from harness import ROOT, markdown_table, shared_datasets, write_results

from langchain_selfamplify import SLM, OpenAICompatibleBackend, load_dataset, load_demo_set
from langchain_selfamplify.models.embedded import default_model_path
from langchain_selfamplify.prompting.messages import answer_prefix, zero_shot_prompt
from langchain_selfamplify.selection.selector import SelfAmplifySelector

sys.path.insert(0, str(ROOT))
from tests import llama_server  # noqa: E402 - the test suite's server launcher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--questions", type=int, default=200, help="ARC-Challenge questions")
    args = parser.parse_args()
    gguf = default_model_path()
    arc = load_dataset("arc_challenge", split="test", data_dir=shared_datasets())
    sets = {"demo (all)": load_demo_set("all"),
            "arc_challenge (test)": random.Random(0).sample(arc, args.questions)}
    local = SLM.from_default(show_progress=False)
    process, base_url = llama_server.start(gguf)
    try:
        served = OpenAICompatibleBackend(base_url, "smollm2", tokenizer=str(gguf),
                                         show_progress=False, max_concurrency=4)
        rows, records = [], []
        for name, questions in sets.items():
            prompts = [zero_shot_prompt(local, q, answer_prefix("letter")) for q in questions]
            labels = [q.labels for q in questions]
            started = time.perf_counter()
            here = local.score_choices(prompts, labels)
            local_seconds = time.perf_counter() - started
            started = time.perf_counter()
            there = served.score_choices(prompts, labels)
            served_seconds = time.perf_counter() - started
            agree = sum(a.predicted == b.predicted for a, b in zip(here, there, strict=True))
            gaps = [max(abs(x - y) for x, y in zip(a.probs, b.probs, strict=True))
                    for a, b in zip(here, there, strict=True)]
            margins = [_margin(a.probs) for a, b in zip(here, there, strict=True)
                       if a.predicted != b.predicted]
            record = {"dataset": name, "questions": len(questions), "agree": agree,
                      "agreement": agree / len(questions), "max_prob_gap": max(gaps),
                      "mean_prob_gap": sum(gaps) / len(gaps),
                      "largest_disagreement_margin": max(margins, default=0.0),
                      "local_seconds": local_seconds, "served_seconds": served_seconds}
            records.append(record)
            rows.append([name, len(questions), f"{agree} ({agree / len(questions):.1%})",
                         f"{max(gaps):.3f}", f"{record['mean_prob_gap']:.4f}",
                         f"{record['largest_disagreement_margin']:.3f}",
                         f"{local_seconds:.1f}", f"{served_seconds:.1f}"])
            print(rows[-1], flush=True)
        pool = load_demo_set("pool")
        picks = {}
        for label, backend in (("local", local), ("served", served)):
            selector = SelfAmplifySelector(backend=backend, examples=pool, strategy="success",
                                           n=4)
            picks[label] = [ex.id for ex in selector.select()]
    finally:
        llama_server.stop(process)
    same_set = sorted(picks["local"]) == sorted(picks["served"])
    shared = len(set(picks["local"]) & set(picks["served"]))
    markdown = "\n".join([
        "# Served against local: the same GGUF through llama.cpp and through transformers",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} by `python benchmarks/served_agreement.py "
        f"--questions {args.questions}`: SmolLM2-135M-Instruct (Q4_1 GGUF) served by a real "
        "llama.cpp server (xllamacpp, 127.0.0.1, 4 slots, 1 thread) against the same file "
        "dequantised to float32 in-process. Zero-shot letter prompts, rendered with the "
        "same chat template (identical token ids). The server computes on the quantised "
        "weights and quantises activations in its dot products.",
        "",
        markdown_table(["questions", "n", "same predicted label", "largest label-probability "
                        "gap", "mean gap", "largest top-two margin (local) among "
                        "disagreements", "local s", "served s"], rows),
        "",
        f"Success selection, 4 of the demo pool: local {picks['local']}, served "
        f"{picks['served']}: {shared} of 4 in common"
        f"{', in the same order' if picks['local'] == picks['served'] else ''}.",
        "",
        "Read: label probabilities differ by a few hundredths at most, so the two disagree "
        "only where the local model's top two labels are that close; this model spreads "
        "its probability over the labels, so such near-ties are common, and agreement is "
        "the share in the table, under the 95% the served-model issue asked for. Success "
        "selection ranks by confidence, so near-ties can swap a demonstration too.",
    ])
    write_results("served_agreement", {"questions": args.questions, "results": records,
                                       "selection": picks, "same_selection": same_set},
                  markdown)


def _margin(probs: list[float]) -> float:
    top, second = sorted(probs, reverse=True)[:2]
    return top - second


if __name__ == "__main__":
    main()
