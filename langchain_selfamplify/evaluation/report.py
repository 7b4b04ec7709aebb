"""The grid's table (shaped like Table 1 of the paper) and figure."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

METHOD_NAMES = {
    "io": "IO", "auto_cot": "Auto-CoT", "amplify": "AMPLIFY", "deeplift": "Self-AMPLIFY DeepLift",
    "kernelshap": "Self-AMPLIFY KernelShap", "self_topk": "Self-AMPLIFY Self_topk",
    "ph_cot": "Self-AMPLIFY Ph-CoT",
}
"""Display names of the methods (others are shown as ``Self-AMPLIFY <name>``)."""


def row_label(method: str, strategy: str) -> str:
    """``"Self-AMPLIFY DeepLift (success)"``, ``"IO"``..."""
    name = METHOD_NAMES.get(method, f"Self-AMPLIFY {method}")
    return name if strategy in ("random", "clusters", "proxy_mcs") else f"{name} ({strategy})"


def grid_table(summary: dict[str, Any]) -> str:
    """Markdown table: one row per method and strategy, one column per dataset.

    A cell reads ``accuracy [95% CI] (n, unparsed u, t s)`` or ``failed: reason``.
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
            elif row["failed"]:
                out.append("failed: " + row["failed"][0].replace("|", "/")[:80])
            elif "accuracy" in row:
                acc = row["accuracy"]
                out.append(f"{acc['value']:.1%} [{acc['ci_low']:.1%}, {acc['ci_high']:.1%}] "
                           f"(n={row['n']}, unparsed {row['unparsed']}, "
                           f"{row['seconds']:.0f} s)")
            else:
                out.append("no predictions")
        lines.append(f"| {label} | " + " | ".join(out) + " |")
    return "\n".join(lines)


def grid_figure(summary: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Accuracy by method with 95% error bars, one panel per dataset, saved to ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = [r for r in summary["rows"] if "accuracy" in r]
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
