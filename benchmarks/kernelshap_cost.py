"""KernelShap on the capable model: what one demonstration costs, before the table runs it.

KernelShap is the capable-model table's last row (``benchmarks/qwen_table.sh``): at the
paper's 200 sampled coalitions per demonstration its prompt is the dearest to build, and
the table has not reached it yet. This measures that cost on the table's own
demonstrations: the first ``--demos`` success demonstrations of each dataset's seed-0
cell (the success selection is the same for every Self-AMPLIFY row of a seed, so these
are the demonstrations KernelShap's cell will explain), each explained exactly as the
grid explains it (the registered ``kernelshap`` method on ``SLM.load``'s defaults), at each
``--samples`` count. It reports the seconds, the tokens the model ran and their share of
the FLOP limit, projects an 8-shot prompt (8 demonstrations) and the table's 18
KernelShap prompts (3 datasets x 3 seeds x success and error), and says how many of
the 5 keywords a smaller sample keeps of the 200-sample ones (a few demonstrations: a
description, not a test).

Run: ``python benchmarks/kernelshap_cost.py`` (about 35 minutes on 2 cores, on a quiet
machine: stop the table meanwhile); ``--report-only`` rewrites the report from the saved
JSON, with ``--reuse-peak`` taking the matrix-multiply peak ``qwen_table_cost.py``
measured. Writes ``docs/results/kernelshap_cost.{json,md}``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from harness import (
    add_report_only,
    comma_list,
    counted_tokens,
    flop_limit_seconds,
    markdown_table,
    rewrote_saved_report,
    table_success_demonstrations,
    write_with_headline,
)
from qwen_table_cost import (
    UNRECORDED_CPU,
    cell_peak,
    machine_peak,
    model_parameters,
    recorded_peaks,
)
from table_projection import TABLE, prompts_per_row
from tqdm import tqdm

from langchain_selfamplify import SLM
from langchain_selfamplify.models.embedded import EMBEDDED_MODELS, QWEN_MODEL
from langchain_selfamplify.rationales.methods.kernelshap import (
    PAPER_SAMPLES,
    KernelShapRationale,
)
from langchain_selfamplify.stages import cpu_capability

SHOTS = 8
"""Demonstrations in one of the table's prompts."""
KEYWORDS = 5
"""Keywords per rationale (the method's default k)."""


def kernelshap_prompts() -> int:
    """The table's KernelShap prompts: one per dataset and seed of each KernelShap row
    (success and error)."""
    return prompts_per_row() * sum(row.startswith("kernelshap") for row in TABLE["rows"])


def explained(slm: SLM, example: Any, samples: int) -> dict[str, Any]:
    """One demonstration explained by KernelShap with ``samples`` coalitions: seconds,
    tokens the model ran, keywords."""
    method = KernelShapRationale(slm, n_samples=samples)  # as get_method("kernelshap")
    with counted_tokens(slm.model) as tokens:
        start = time.perf_counter()
        attribution = method.attribute(example)
        seconds = time.perf_counter() - start
    return {"samples": samples, "seconds": seconds, "tokens": tokens["tokens"],
            "forward_calls": tokens["forward_calls"],
            "content_words": sum(w.is_candidate for w in attribution.words),
            "keywords": attribution.top_k(KEYWORDS)}


def projection(payload: dict[str, Any]) -> dict[str, Any]:
    """Seconds per demonstration at the first coalition count, an 8-shot prompt's and
    the table's KernelShap prompts', and the keywords fewer coalitions keep."""
    runs, counts = payload["runs"], payload["samples"]
    per_demo = statistics.mean(r["by_samples"][0]["seconds"] for r in runs)
    return {"seconds_per_demo": per_demo, "prompt_seconds": SHOTS * per_demo,
            "table_hours": SHOTS * per_demo * kernelshap_prompts() / 3600,
            "keywords_kept": {str(n): [len(set(r["by_samples"][i]["keywords"])
                                           & set(r["by_samples"][0]["keywords"]))
                                       for r in runs]
                              for i, n in enumerate(counts) if i}}


def report(payload: dict[str, Any]) -> str:
    """The Markdown report of a measurement's ``payload``."""
    runs, counts = payload["runs"], payload["samples"]
    params, gflops = payload["parameters"], payload["gflops"]
    projected = projection(payload)

    def of_peak(s: dict[str, Any]) -> str:
        return f"{flop_limit_seconds(params, s['tokens'], gflops) / s['seconds']:.0%}"

    rows = [[r["dataset"], r["example"], s["content_words"], s["samples"],
             f"{s['seconds']:.0f}", s["tokens"], of_peak(s), ", ".join(s["keywords"])]
            for r in runs for s in r["by_samples"]]
    return "\n".join([
        f"# KernelShap on {EMBEDDED_MODELS.get(payload['model'], payload['model'])}: what a "
        "demonstration costs",
        "",
        f"The first {payload['demos']} success demonstration(s) of each dataset's seed-0 "
        "cell in the capable-model table (the demonstrations its KernelShap cell "
        "explains), each explained as the grid explains it (float32, 2 cores of an "
        f"{payload.get('cpu_capability', UNRECORDED_CPU)} CPU, the "
        f"model's default scoring batch of {payload['batch_size']} coalitions per pass, "
        "the prompt's cache kept across passes). Of peak: the FLOP limit of the tokens "
        f"run (2 x {params / 1e9:.2f}B non-embedding parameters per token, at "
        f"{gflops:.0f} GFLOP/s, that CPU's float32 matrix-multiply peak measured "
        f"{payload.get('gflops_measured', 'by its run')}) over the measured seconds.",
        "",
        markdown_table(["dataset", "demonstration", "content words", "coalitions",
                        "seconds", "tokens run", "of peak", f"top {KEYWORDS} keywords"],
                       rows),
        "",
        f"- At {counts[0]} coalitions a demonstration took "
        f"{projected['seconds_per_demo']:.0f} s on average, so an {SHOTS}-shot prompt "
        f"takes about **{projected['prompt_seconds'] / 60:.0f} minutes** to explain its "
        f"demonstrations (pool scoring not counted), and the table's "
        f"{kernelshap_prompts()} KernelShap prompts (success and error, 3 datasets x 3 "
        f"seeds) about **{projected['table_hours']:.1f} hours** (a projection from "
        f"{len(runs)} demonstration(s)).",
        *[f"- At {n} coalitions the top {KEYWORDS} keywords kept "
          f"{', '.join(str(k) for k in projected['keywords_kept'][str(n)])} of the "
          f"{counts[0]}-coalition ones (per demonstration), in "
          f"{statistics.mean(r['by_samples'][i]['seconds'] for r in runs):.0f} s on "
          "average: fewer coalitions would be a separate, labelled row, never the "
          "paper's."
          for i, n in enumerate(counts) if i],
    ])


def peak(reuse: bool, cpu: str | None = None) -> tuple[float, str]:
    """The float32 matrix-multiply peak and how it was had: this machine's measured now,
    or with ``reuse`` the one the table's cost report recorded for ``cpu`` (this
    machine's CPU by default, measured when it has none recorded: a busy machine
    measures less). Another CPU's peak is read, never measured here."""
    if not reuse:
        return machine_peak(reuse=False)
    if cpu is None or cpu == cpu_capability():
        return machine_peak(reuse=True)
    return cell_peak(recorded_peaks(), cpu), "as `benchmarks/qwen_table_cost.py` recorded it"


def headline(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """No README performance row: the table's cost report carries the projection."""
    return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=QWEN_MODEL,
                        help="the model to explain with (the table's by default)")
    parser.add_argument("--datasets", default="arc_challenge,commonsense_qa,social_iqa")
    parser.add_argument("--demos", type=int, default=2,
                        help="success demonstrations of each dataset's seed-0 cell")
    parser.add_argument("--samples", default=f"{PAPER_SAMPLES},32",
                        help="coalition counts; the first is the one projected")
    parser.add_argument("--reuse-peak", action="store_true",
                        help="take the matrix-multiply peak qwen_table_cost.py measured "
                             "instead of measuring it (for a machine that is not quiet)")
    add_report_only(parser)
    args = parser.parse_args()

    def amend(saved: dict[str, Any]) -> dict[str, Any]:
        # A rewrite may correct the peak (a quiet machine's) and the parameter count.
        if args.reuse_peak:  # the peak of the CPU the demonstrations ran on
            saved["gflops"], saved["gflops_measured"] = peak(
                reuse=True, cpu=saved.get("cpu_capability") or UNRECORDED_CPU)
        saved["parameters"] = model_parameters(saved["model"])
        for run in saved["runs"]:  # the share of peak is the report's to compute
            for by_samples in run["by_samples"]:
                by_samples.pop("of_peak", None)
        return {**saved, **projection(saved)}

    if rewrote_saved_report(args, "kernelshap_cost", report, headline, amend=amend):
        return
    counts = [int(s) for s in comma_list(args.samples)]
    gflops, measured = peak(args.reuse_peak)  # first, on the quiet machine
    slm = SLM.load(args.model, show_progress=False)
    work = [(dataset, example) for dataset in comma_list(args.datasets)
            for example in table_success_demonstrations(dataset)[: args.demos]]
    runs = [{"dataset": dataset, "example": example.id,
             "by_samples": [explained(slm, example, n) for n in counts]}
            for dataset, example in tqdm(work, desc="KernelShap demonstrations")]
    payload = {"model": args.model, "samples": counts, "demos": args.demos,
               "gflops": gflops, "gflops_measured": measured,
               "cpu_capability": cpu_capability(),
               "parameters": model_parameters(args.model), "batch_size": slm.batch_size,
               "runs": runs}
    write_with_headline("kernelshap_cost", {**payload, **projection(payload)}, report,
                        headline)


if __name__ == "__main__":
    main()
