"""What ``selfamplify run`` prints: the IO and Self-AMPLIFY rows, their paired test on
the same questions in plain words, the time per step and where the files went."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table

from langchain_selfamplify.evaluation.statistics import compare_paired
from langchain_selfamplify.pipeline import RunResult


def print_run_result(result: RunResult, console: Console) -> None:
    """Print the IO vs Self-AMPLIFY table, their paired comparison, the time per step
    and where the files went."""
    table = Table(title=f"{result.model_name} on {result.config.dataset} "
                        f"({result.config.shots} shots, pool of {result.pool_size}, "
                        f"{result.config.answer_format} format)")
    for column in ("prompt", "accuracy", "95% CI", "n", "top label"):
        table.add_column(column, justify="left" if column == "prompt" else "right")
    for row in (result.io, result.self_amplify):
        acc = row.accuracy
        label, count = Counter(p.predicted for p in row.predictions).most_common(1)[0]
        table.add_row(row.name, f"{acc.value:.1%}", f"[{acc.ci_low:.1%}, {acc.ci_high:.1%}]",
                      str(acc.n), f"{label} {count / len(row.predictions):.0%}")
    console.print(table)
    paired = compare_paired({p.id: p.correct for p in result.self_amplify.predictions},
                            {p.id: p.correct for p in result.io.predictions})
    console.print(
        f"Self-AMPLIFY - IO on the same {paired.n} questions: "
        f"{paired.difference * 100:+.1f} pts, 95% paired bootstrap "
        f"[{paired.ci_low * 100:+.1f}, {paired.ci_high * 100:+.1f}], exact McNemar "
        f"p={paired.p_value:.2g}: {paired.verdict}"
        f"{' IO' if paired.verdict != 'no detectable difference' else ''} "
        "(one seed; `selfamplify evaluate` runs several and resamples them).")
    timing = ", ".join(f"{step} {seconds:.1f}s" for step, seconds in result.timings.items())
    console.print(f"time: {timing}")
    out = result.config.output_dir
    console.print(f"wrote {out}/amplified_prompt.json and {out}/results.json")

