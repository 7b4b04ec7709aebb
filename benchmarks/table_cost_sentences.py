"""The table-cost report's sentences that quote other benchmarks' measurements.

``benchmarks/qwen_table_cost.py`` reads the capable-model table's own records; what it
says about speed options, a decoding step's cost and memory comes from the reports of
``dtype_speed.py``, ``offload_agreement.py``, ``decode_rows.py`` and ``qwen_memory.py``.
Each function here reads one of those reports (if it was written) and returns the
sentence, so the cost report stays true as they are remeasured.
"""

from __future__ import annotations

import json
from typing import Any

from decode_rows import fixed_and_per_row
from dtype_speed import hosts
from harness import RESULTS
from qwen_memory import chunk_peaks

from langchain_selfamplify.evaluation.metrics import accuracy

APPROXIMATE_ROUTES = {"offload": "llama.cpp generation (`--generate-url`, approximate)",
                      "int8": "int8 decoder layers (torch dynamic quantisation, approximate)"}
"""The approximate speed routes of ``benchmarks/offload_agreement.py``."""


def dtype_line(total: float) -> str:
    """bfloat16's time against float32's on each machine measured
    (``benchmarks/dtype_speed.py``), and the table projected at its ratio there: the
    table-step ratio where measured (the regime of its rationale rows), else decoding's."""
    path = RESULTS / "dtype_speed.json"
    if not path.is_file():
        return "bfloat16: not measured on this model (`benchmarks/dtype_speed.py`)."
    sentences = []
    for capability, record in hosts(json.loads(path.read_text(encoding="utf-8"))).items():
        ratio = record.get("bfloat16_table_step_time_ratio",
                           record["bfloat16_decode_time_ratio"])
        what = "a table decoding step" if "bfloat16_table_step_time_ratio" in record else "decoding"
        sentences.append(
            f"on a CPU with `{capability}`, bfloat16 is {'faster' if ratio < 1 else 'slower'}: "
            f"{record['bfloat16_prefill_time_ratio']:.2f}x float32's time to encode prompts, "
            f"{ratio:.2f}x for {what}, so the table would take about {total * ratio:.0f} "
            "hours at that ratio")
    return ("bfloat16 (`docs/results/dtype_speed.md`): " + "; ".join(sentences)
            + " (its predictions against float32's: `docs/results/dtype_agreement.md`).")


def speed_routes_line(total: float) -> str:
    """What the approximate speed routes measured on this table's Ph-CoT questions, if
    they were run: seconds per question against exact float32 on the same questions
    (the exact route when it decoded as many together, else the table's own seconds),
    the labels kept, and the table's ``total`` hours projected at that time ratio."""
    path = RESULTS / "offload_agreement.json"
    routes = json.loads(path.read_text(encoding="utf-8"))["routes"] if path.is_file() else {}
    measured = {name: routes[name] for name in APPROXIMATE_ROUTES if name in routes}
    if not measured:
        return ("llama.cpp generation (`--generate-url`, approximate) changes the per-token "
                "cost, not the number of tokens (`docs/results/grid.md`).")
    exact = routes.get("exact")
    lines = []
    for name, route in measured.items():
        n = route["questions"]
        if exact is not None and exact["questions"] == n:
            base, basis = exact["seconds"] / n, "exact float32 decoding as many together"
        else:
            base, basis = route["table_seconds"] / n, "the table's own seconds"
        faster = route["seconds"] / n < base
        close = accuracy(route["same_labels_as_table"], n).ci_high >= 0.98
        verdict = ("faster and possibly within the 98% agreement bar" if faster and close
                   else "faster, but its agreement is below the 98% bar" if faster
                   else "not faster" + ("" if close else ", and its agreement is below the "
                                        "98% bar"))
        lines.append(f"{APPROXIMATE_ROUTES[name]} took {route['seconds'] / n:.0f} s per "
                     f"question on {n} of this table's Ph-CoT questions against {base:.0f} "
                     f"s ({basis}) and kept {route['same_labels_as_table']} of {n} "
                     f"labels: {verdict}; the table would take about "
                     f"{total * route['seconds'] / n / base:.0f} hours at that ratio.")
    return " ".join(lines) + " (`docs/results/offload_agreement.md`)"


def decode_line() -> str:
    """What a decoding step costs by its rows (``benchmarks/decode_rows.py``), if
    measured."""
    path = RESULTS / "decode_rows.json"
    if not path.is_file():
        return ("A decoding step passes every row through every weight, and a chunk of "
                "questions decodes until its longest rationale ends, so its late steps run "
                "few rows.")
    measured = json.loads(path.read_text(encoding="utf-8"))
    fixed, per_row = fixed_and_per_row(measured["runs"])
    row_gflops = 2 * measured["parameters"] / per_row / 1e9
    return (f"A decoding step costs about {fixed:.2f} s plus {1000 * per_row:.0f} ms per "
            "row (`docs/results/decode_rows.md`): the rows' arithmetic runs at "
            f"{row_gflops / measured['peak_gflops']:.0%} of the matrix-multiply peak "
            "measured in that run, and a chunk decodes until its longest rationale ends, "
            "each late step paying the fixed part for few rows.")


def memory_line(finished: dict[str, dict[str, Any]]) -> str:
    """The largest peak memory the table's cells recorded, if any did, and the peak of a
    chunk of its answers at the CPU default of slots (``benchmarks/qwen_memory.py``),
    if measured."""
    peaks = [r["peak_rss_mib"] for r in finished.values() if r.get("peak_rss_mib")]
    if not peaks:
        line = ("not recorded by these cells (cells record it from this commit on; "
                "`peak_rss_mib` in `cells.jsonl`)")
    else:
        line = (f"{max(peaks) / 1024:.2f} GiB, the largest of the {len(peaks)} cells that "
                "recorded it (the model file's mapped pages included while resident)")
    path = RESULTS / "qwen_memory.json"
    chunk = (json.loads(path.read_text(encoding="utf-8")).get("answered_chunk")
             if path.is_file() else None)
    if chunk:
        line += (f". Decoding {chunk['questions']} together (`--decode-slots "
                 f"{chunk['questions']}`), a chunk of this table's Ph-CoT answers peaked at "
                 f"{chunk_peaks(chunk)}, at {chunk['seconds'] / chunk['questions']:.1f} s per "
                 "question (`docs/results/qwen_memory.md`)")
    return line

