"""The grid's table (shaped like Table 1 of the paper) and figure."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from langchain_selfamplify.baselines import BASELINES

METHOD_NAMES = {
    "io": "IO", "auto_cot": "Auto-CoT", "amplify": "AMPLIFY", "deeplift": "Self-AMPLIFY DeepLift",
    "kernelshap": "Self-AMPLIFY KernelShap", "self_topk": "Self-AMPLIFY Self_topk",
    "ph_cot": "Self-AMPLIFY Ph-CoT", "dspy_bootstrap": "DSPy BootstrapFewShot",
    "dspy_labeled": "DSPy LabeledFewShot",
}
"""Display names of the methods (others are shown as ``Self-AMPLIFY <name>``)."""


CUT_FLAG = 0.10
"""Share of test-time rationales cut at the token cap above which a row is flagged."""


def row_label(method: str, strategy: str) -> str:
    """``"Self-AMPLIFY DeepLift (success)"``, ``"IO"``..."""
    name = METHOD_NAMES.get(method, f"Self-AMPLIFY {method}")
    return name if strategy in BASELINES.values() else f"{name} ({strategy})"


def grid_table(summary: dict[str, Any]) -> str:
    """Markdown table: one row per method and strategy, one column per dataset.

    A cell reads ``accuracy [95% CI] (n, seeds, top label share, truncation, skipped)``,
    pooled over seeds, or ``failed: reason``. The interval is a cluster bootstrap over
    questions when there are several seeds (Wilson for one). ``⚑`` marks a row where
    some seed's most predicted label covers more than 80% of its answers; ``≈chance``
    one whose interval reaches the chance rate; ``✂`` one where more than 10% of the
    test-time rationales hit their token cap; "skipped" counts the selected examples
    replaced for want of a usable rationale (Self_topk), over seeds.
    """
    rows = summary["rows"]
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    labels = list(dict.fromkeys(row_label(r["method"], r["strategy"]) for r in rows))
    cells = {(row_label(r["method"], r["strategy"]), r["dataset"]): r for r in rows}
    lines = ["| method | " + " | ".join(datasets) + " |", "|---|" + "---|" * len(datasets)]
    for label in labels:
        out = []
        for dataset in datasets:
            row = cells.get((label, dataset))
            if row is None:
                out.append("")
            elif row["failed"] and "accuracy" not in row:
                out.append("failed: " + row["failed"][0].replace("|", "/")[:80])
            elif "accuracy" in row:
                out.append(_row_cell(row))
            else:
                out.append("no predictions")
        lines.append(f"| {label} | " + " | ".join(out) + " |")
    return "\n".join(lines)


def cut_share(row: dict[str, Any]) -> float | None:
    """A summary row's share of test-time rationales cut at their token cap, averaged
    over its seeds; ``None`` for a row that writes none (IO)."""
    rates = row["truncation_rates"]
    return sum(rates) / len(rates) if rates else None


def _row_cell(row: dict[str, Any]) -> str:
    acc = row["accuracy"]
    marks = (" ⚑" if row["flagged"] else "") + (" ≈chance" if row.get("at_chance") else "")
    text = (f"{acc['value']:.1%} [{acc['ci_low']:.1%}, {acc['ci_high']:.1%}]{marks} "
            f"(n={row['n'] // max(1, len(row['seed_accuracies']))}×{len(row['seed_accuracies'])}"
            f" seeds, top label {max(row['top_label_shares']):.0%}")
    cut = cut_share(row)
    if cut is not None:
        text += f", cut {cut:.0%}{' ✂' if cut > CUT_FLAG else ''}"
    if row.get("skipped"):
        text += f", {row['skipped']} skipped"
    if row.get("fallbacks"):
        text += f", **{row['fallbacks']} seed(s) no trace passed: labelled only**"
    if row.get("partial"):
        text += f", **{row['partial']} seed(s) partial**"
    if row["failed"]:
        text += f", {len(row['failed'])} seed(s) failed"
    return text + ")"


def comparison_table(summary: dict[str, Any], baseline: str = "io") -> str:
    """Markdown table of every row's paired difference with ``baseline``, across seeds.

    A cell reads ``+4.5 pts [-1.0, 10.0], p=0.12: no detectable difference``: the mean
    accuracy difference over seeds, its 95% percentile-bootstrap interval and p-value.
    A line above the table says what the interval resamples (seeds then questions, or
    questions only), which test gives p, and the Holm family the verdicts are corrected
    over. A verdict needs both the interval to exclude 0 and p to pass Holm's threshold.
    """
    found = [c for c in summary["comparisons"]
             if c["baseline"] == baseline and c["seed"] == "all"]
    datasets = list(dict.fromkeys(c["dataset"] for c in found))
    labels = list(dict.fromkeys(row_label(c["method"], c["strategy"]) for c in found))
    cells = {(row_label(c["method"], c["strategy"]), c["dataset"]): c for c in found}
    name = METHOD_NAMES.get(baseline, baseline)
    if not found:
        return comparison_note(found)
    lines = [comparison_note(found), "", f"| vs {name} | " + " | ".join(datasets) + " |",
             "|---|" + "---|" * len(datasets)]
    for label in labels:
        out = []
        for dataset in datasets:
            c = cells.get((label, dataset))
            out.append("" if c is None else
                       f"{c['difference'] * 100:+.1f} pts [{c['ci_low'] * 100:+.1f}, "
                       f"{c['ci_high'] * 100:+.1f}], p={c['p_value']:.2g}: "
                       f"{_verdict_text(c, name)}")
        lines.append(f"| {label} | " + " | ".join(out) + " |")
    return "\n".join(lines)


def comparison_note(found: list[dict[str, Any]]) -> str:
    """What the comparisons' intervals resample, their test, and the Holm families."""
    if not found:
        return "No paired comparison."
    levels = sorted({c.get("interval_level", "questions") for c in found})
    tests = sorted({c.get("test", "") for c in found} - {""})
    sizes = sorted({(c.get("family_size", 1), c.get("family_finished", c.get("family_size", 1)))
                    for c in found})
    families = ", ".join(f"{size}" if done == size else f"{size} ({done} finished)"
                         for size, done in sizes)
    return (f"Intervals resample {' / '.join(levels)}; p from {' / '.join(tests) or 'n/a'}; "
            f"verdicts Holm-corrected over families of {families} planned test(s) "
            "(Self-AMPLIFY rows against this baseline; baselines apart; a test not "
            "finished counts as not rejected, so a verdict stands as the table fills).")


def _verdict_text(comparison: dict[str, Any], baseline: str) -> str:
    return {"beats": f"**beats {baseline}**", "worse than": f"**worse than {baseline}**"}.get(
        comparison["verdict"], "no detectable difference" + holm_caveat(comparison))


def holm_caveat(comparison: dict[str, Any]) -> str:
    """Why a comparison whose interval excludes 0 still has no verdict: its p-value does
    not pass Holm's correction over its family (empty otherwise)."""
    excludes_zero = comparison["ci_low"] > 0 or comparison["ci_high"] < 0
    if comparison["verdict"] != "no detectable difference" or not excludes_zero:
        return ""
    return (f" (the interval excludes 0, but p does not pass Holm's correction over "
            f"{comparison.get('family_size', 1)} planned tests)")


def _named(comparison: dict[str, Any], most_seeds: int) -> str:
    """A compared row's name, with its seeds when fewer than ``most_seeds`` (the most of
    any row of its dataset): such a verdict rests on fewer runs than the others', with
    less or no seed-to-seed spread in its interval yet."""
    seeds = comparison.get("seeds", most_seeds)
    return row_label(comparison["method"], comparison["strategy"]) + (
        f" at {seeds} of {most_seeds} seeds so far" if seeds < most_seeds else "")


def verdict_lines(summary: dict[str, Any], baseline: str = "io") -> list[str]:
    """One plain sentence per dataset: where the method rows beat ``baseline``, where
    they do not, and where the model is at chance, from the across-seed paired tests."""
    name = METHOD_NAMES.get(baseline, baseline)
    lines = []
    rows = {(r["dataset"], r["method"], r["strategy"]): r for r in summary["rows"]}
    for dataset in dict.fromkeys(r["dataset"] for r in summary["rows"]):
        found = [c for c in summary["comparisons"] if c["dataset"] == dataset
                 and c["baseline"] == baseline and c["seed"] == "all"
                 and c["method"] not in BASELINES]
        most_seeds = max((c.get("seeds", 1) for c in found), default=1)
        beats = [_named(c, most_seeds) for c in found if c["verdict"] == "beats"]
        worse = [_named(c, most_seeds) for c in found if c["verdict"] == "worse than"]
        chance = [key for key, r in rows.items() if key[0] == dataset and r.get("at_chance")]
        flagged = [key for key, r in rows.items() if key[0] == dataset and r.get("flagged")]
        parts = ([f"{len(beats)} of {len(found)} Self-AMPLIFY rows beat {name}"
                  + (f" ({', '.join(beats)})" if beats else ""),
                  f"{len(worse)} {'is' if len(worse) == 1 else 'are'} worse"
                  + (f" ({', '.join(worse)})" if worse else "")]
                 if found else [f"no Self-AMPLIFY row compared with {name} yet"])
        total = sum(1 for key in rows if key[0] == dataset)
        parts.append(f"{len(chance)} of {total} rows are within reach of chance")
        if flagged:
            parts.append(f"{len(flagged)} of {total} rows put one label on over 80% of "
                         "questions in some seed")
        lines.append(f"- **{dataset}**: " + "; ".join(parts) + ".")
    return lines


def grid_figure(summary: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Accuracy by method with 95% error bars, one panel per dataset, saved to ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = [r for r in summary["rows"] if "accuracy" in r]  # pooled over seeds
    datasets = list(dict.fromkeys(r["dataset"] for r in rows)) or ["(none)"]
    figure, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 4.5),
                                squeeze=False, sharey=True)
    for axis, dataset in zip(axes[0], datasets, strict=True):
        panel = [r for r in rows if r["dataset"] == dataset]
        labels = [row_label(r["method"], r["strategy"]).replace("Self-AMPLIFY ", "SA ")
                  for r in panel]
        values = [r["accuracy"]["value"] for r in panel]
        low = [v - r["accuracy"]["ci_low"] for v, r in zip(values, panel, strict=True)]
        high = [r["accuracy"]["ci_high"] - v for v, r in zip(values, panel, strict=True)]
        colours = ["#9ca3af" if r["method"] in ("io", "auto_cot", "amplify") else "#dc2626"
                   for r in panel]
        axis.bar(range(len(panel)), values, yerr=[low, high], color=colours, capsize=3)
        axis.set_xticks(range(len(panel)), labels, rotation=60, ha="right", fontsize=8)
        axis.set_title(dataset)
        axis.set_ylim(0, 1)
    axes[0][0].set_ylabel("accuracy (95% CI)")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
