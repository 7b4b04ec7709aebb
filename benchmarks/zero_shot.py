"""Zero-shot screen: where can each embedded model do the task at all?

For every embedded model, paper dataset and answer format, the model answers the grid's
fixed test questions (the same ``load_pool_and_test`` split every grid cell uses) with
no demonstration: the question alone, then "The answer is (" (letter: the labels
scored) or "The answer is:" (cloze: each choice text's summed log-likelihood over its
length in characters, lm-eval's ``acc_norm``). Each cell reports accuracy with its
Wilson interval, the chance rate, and the label-bias diagnostics (share of the most
predicted label). A dataset where a model's interval reaches chance in both formats is
marked "at chance": the paper's comparison on it cannot say anything for that model.

Resumable: every answer is appended to ``docs/results/zero_shot_run/<model>.jsonl``
(``<model>__<dtype>.jsonl`` with ``--dtype``) as soon as its batch is scored, and a
rerun skips what is there. ``benchmarks/dtype_agreement.py`` compares the float32 and
bfloat16 answers question by question.

Run: ``python benchmarks/zero_shot.py [--models ...] [--datasets ...] [--formats ...]
[--dtype bfloat16]``.
Writes ``docs/results/zero_shot.{json,md}``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness import RESULTS, comma_list, markdown_table, shared_datasets, write_results

from langchain_selfamplify import SLM
from langchain_selfamplify.checkpoint import append_jsonl, read_jsonl
from langchain_selfamplify.data.loaders import load_pool_and_test
from langchain_selfamplify.evaluation.diagnostics import TOP_LABEL_FLAG, cell_diagnostics
from langchain_selfamplify.evaluation.metrics import accuracy
from langchain_selfamplify.models.answer_formats import score_answers
from langchain_selfamplify.models.embedded import EMBEDDED_MODELS
from langchain_selfamplify.prompting.messages import answer_prefix, zero_shot_prompt

DATASETS = ["arc_challenge", "commonsense_qa", "social_iqa", "snarks", "causal_judgment"]
RUN_DIR = RESULTS / "zero_shot_run"
BATCH = 20


def run_file(model: str, dtype: str | None = None) -> Path:
    """Where a model's screen answers are saved (one file per model and dtype)."""
    return RUN_DIR / (f"{model}__{dtype}.jsonl" if dtype else f"{model}.jsonl")


def screen(slm: SLM | None, model: str, dataset: str, answer_format: str,
           test_size: int, dtype: str | None = None) -> tuple[list[dict[str, Any]], int]:
    """The cell's answers: those saved, then (with a model) the rest, saved as they
    come; and the number of test questions the cell has in all."""
    path = run_file(model, dtype)
    saved = [r for r in read_jsonl(path)
             if r["dataset"] == dataset and r["answer_format"] == answer_format]
    _, test = load_pool_and_test(dataset, pool_size=100, test_size=test_size,
                                 data_dir=shared_datasets())
    done = {r["question_id"] for r in saved}
    todo = [q for q in test if q.id not in done]
    if slm is None or not todo:
        return saved, len(test)
    for start in range(0, len(todo), BATCH):
        batch = todo[start : start + BATCH]
        prefix = answer_prefix(answer_format)  # type: ignore[arg-type]
        prompts = [zero_shot_prompt(slm, q, prefix) for q in batch]
        scores = score_answers(slm, prompts, [q.choices for q in batch],
                               answer_format)  # type: ignore[arg-type]
        records = [{"dataset": dataset, "answer_format": answer_format, "question_id": q.id,
                    "gold": q.answer, "parsed": s.predicted, "correct": s.predicted == q.answer,
                    "n_choices": len(q.choices)} for q, s in zip(batch, scores, strict=True)]
        append_jsonl(path, records)
        saved += records
        print(f"{model} {dataset} {answer_format}: {len(saved)}/{len(test)}", flush=True)
    return saved, len(test)


def screen_decision(cells: list[dict[str, Any]], model: str, dataset: str,
                    formats: list[str]) -> dict[str, Any]:
    """Whether the comparison runs on ``dataset`` for ``model``: yes once a finished
    format is above chance; "not run" only when every format is finished and at
    chance; else the screen is unfinished."""
    mine = {c["answer_format"]: c for c in cells
            if c["model"] == model and c["dataset"] == dataset}
    finished = {f: c for f, c in mine.items() if c.get("finished", True)}
    if any(not c["at_chance"] for c in finished.values()):
        decision, kept = "run the comparison", True
    elif len(finished) == len(formats):
        decision, kept = "**at chance in every format: not run**", False
    else:
        missing = [f for f in formats if f not in finished]
        decision, kept = f"screen unfinished ({', '.join(missing)} to do)", None
    return {"model": model, "dataset": dataset, "formats": len(finished), "kept": kept,
            "decision": decision}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="qwen2.5-coder-1.5b,smollm2-135m,gemma3-270m")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--formats", default="letter,cloze")
    parser.add_argument("--test-size", type=int, default=200)
    parser.add_argument("--dtype", default=None,
                        help="model dtype (float32 when omitted); saved apart, and the report "
                             "is then docs/results/zero_shot_<dtype>.{json,md}")
    parser.add_argument("--report-only", action="store_true",
                        help="write the report from the answers saved so far, run nothing")
    args = parser.parse_args()
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    cells: list[dict[str, Any]] = []
    for model in comma_list(args.models):
        slm = None
        if not args.report_only:
            try:
                slm = SLM.load(model, show_progress=False, torch_dtype=args.dtype)
            except Exception as exc:  # an optional model not installed: reported, not fatal
                print(f"{model}: not screened ({exc})")
        # letter on every dataset first: the cheaper format, and the one the grid uses
        for answer_format in comma_list(args.formats):
            for dataset in comma_list(args.datasets):
                records, questions = screen(slm, model, dataset, answer_format,
                                            args.test_size, args.dtype)
                if not records:
                    continue
                diag = cell_diagnostics(records, [])
                acc = accuracy(sum(r["correct"] for r in records), len(records))
                cells.append({"model": EMBEDDED_MODELS.get(model, model), "dataset": dataset,
                              "answer_format": answer_format, "accuracy": acc.model_dump(),
                              "questions": questions,
                              "finished": len(records) >= questions,
                              "chance": diag.chance, "top_label": diag.top_label,
                              "top_label_share": diag.top_label_share,
                              "at_chance": acc.ci_low <= diag.chance})
        del slm
    formats = comma_list(args.formats)
    verdicts = [screen_decision(cells, EMBEDDED_MODELS.get(model, model), dataset, formats)
                for model in comma_list(args.models) for dataset in comma_list(args.datasets)]
    rows = [[c["model"], c["dataset"], c["answer_format"],
             f"{c['accuracy']['value']:.1%} [{c['accuracy']['ci_low']:.1%}, "
             f"{c['accuracy']['ci_high']:.1%}]",
             c["accuracy"]["n"] if c.get("finished", True)
             else f"{c['accuracy']['n']} of {c['questions']} (unfinished)",
             f"{c['chance']:.1%}",
             f"{c['top_label']} {c['top_label_share']:.0%}"
             + (" ⚑" if c["top_label_share"] > TOP_LABEL_FLAG else ""),
             "**at chance**" if c["at_chance"] else "above chance"] for c in cells]
    kept = [[v["model"], v["dataset"], v["decision"]] for v in verdicts]
    markdown = "\n".join([
        "# Zero-shot screen of the embedded models"
        + (f" ({args.dtype})" if args.dtype else ""),
        "",
        "Each model answers each dataset's fixed test questions (the grid's) with no "
        "demonstration. Letter: the labels scored after \"The answer is (\". Cloze: each "
        "choice text's log-likelihood after \"The answer is:\" over its length in "
        "characters (`acc_norm`). 95% Wilson interval; \"at chance\" when it reaches the "
        "chance rate; ⚑ when one label takes over 80% of the answers.",
        "",
        markdown_table(["model", "dataset", "format", "accuracy [95% CI]", "n", "chance",
                        "top label", "vs chance"], rows),
        "",
        "## Where the paper's comparison can say anything",
        "",
        markdown_table(["model", "dataset", "decision"], kept),
    ])
    write_results(f"zero_shot_{args.dtype}" if args.dtype else "zero_shot",
                  {"cells": cells, "decisions": verdicts, "settings": vars(args)}, markdown)


if __name__ == "__main__":
    main()
