"""Seeing attributions: a self-contained HTML heatmap and a matplotlib figure.

Words supporting the gold answer are shaded red, words against it blue, with opacity
proportional to ``|score| / max |score|`` of the example. The HTML needs no network
assets (inline CSS only), so it opens anywhere, offline.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.deprecation import accepts_renamed_arguments
from langchain_selfamplify.models.backend import ModelBackend
from langchain_selfamplify.rationales.words import WordAttribution, keyword_rationale

POSITIVE_RGB = (220, 38, 38)
"""Colour of words that support the explained label."""
NEGATIVE_RGB = (37, 99, 235)
"""Colour of words that argue against it."""


def _alpha(score: float, scale: float) -> float:
    return 0.0 if scale <= 0 else min(1.0, abs(score) / scale)


def _rgba(score: float, scale: float) -> str:
    red, green, blue = POSITIVE_RGB if score >= 0 else NEGATIVE_RGB
    return f"rgba({red}, {green}, {blue}, {_alpha(score, scale):.3f})"


def _example_html(example: MCQExample, attribution: WordAttribution, k: int,
                  method: str | None) -> str:
    text = example.render()
    scale = max((abs(s) for s in attribution.scores), default=0.0)
    spans, cursor = [], 0
    for word, score in zip(attribution.words, attribution.scores, strict=True):
        spans.append(html.escape(text[cursor : word.start]))
        spans.append(
            f'<span class="w" style="background:{_rgba(score, scale)}" '
            f'title="{score:+.4f}" data-score="{score:.6f}">{html.escape(word.text)}</span>'
        )
        cursor = word.end
    spans.append(html.escape(text[cursor:]))
    keywords = attribution.top_k(k)
    rationale = keyword_rationale(keywords, attribution.label) if keywords else ""
    heading = f"{html.escape(example.id)} &middot; gold ({html.escape(attribution.label)})"
    if method:
        heading += f" &middot; {html.escape(method)}"
    return (
        f'<section class="example"><h2>{heading}</h2>'
        f'<pre class="question">{"".join(spans)}</pre>'
        f'<p class="rationale">{html.escape(rationale)}</p></section>'
    )


def heatmap_html(
    items: Sequence[tuple[MCQExample, WordAttribution]],
    *,
    k: int = 5,
    method: str | None = None,
    title: str = "Self-AMPLIFY attributions",
) -> str:
    """A self-contained HTML page with one word heatmap per example.

    Args:
        items: ``(example, attribution)`` pairs: one example, or a whole prompt's.
        k: Keywords listed in each example's rationale line. Defaults to 5.
        method: Explainer name shown in the headings.
        title: Page title.
    """
    sections = "\n".join(_example_html(ex, attr, k, method) for ex, attr in items)
    red, blue = POSITIVE_RGB, NEGATIVE_RGB
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 24px; color: #111; background: #fff; }}
h1 {{ font-size: 20px; }} h2 {{ font-size: 15px; margin: 18px 0 6px; }}
pre.question {{ font: 18px/1.9 sans-serif; white-space: pre-wrap; margin: 0; }}
span.w {{ padding: 2px 3px; border-radius: 3px; }}
p.rationale {{ font-style: italic; margin: 6px 0 0; }}
.legend span {{ padding: 2px 8px; margin-right: 8px; border-radius: 3px; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="legend"><span style="background:rgb{red}">supports the answer</span>
<span style="background:rgb{blue};color:#fff">argues against it</span></p>
{sections}
</body></html>
"""


@accepts_renamed_arguments
def attribute_examples(
    backend: ModelBackend, examples: Sequence[MCQExample], method: str = "deeplift", **settings: Any
) -> list[tuple[MCQExample, WordAttribution]]:
    """``(example, attribution)`` pairs for a whole prompt's demonstrations.

    Example:
        ``save_heatmap_html("prompt.html", attribute_examples(backend, prompt.examples))``

    Args:
        backend: The model to explain.
        examples: The examples, e.g. ``AmplifiedPrompt.examples``.
        method: A registered attribution method. Defaults to ``"deeplift"``.
        **settings: The method's settings (``k``, ``n_samples``...).
    """
    from langchain_selfamplify.errors import RationaleError
    from langchain_selfamplify.rationales.attribution import AttributionMethod
    from langchain_selfamplify.rationales.base import get_method

    cls = get_method(method)
    if not issubclass(cls, AttributionMethod):
        raise RationaleError(f"{method} writes free text; heatmaps need an attribution method")
    explainer = cls(backend, **settings)
    explainer.check(examples)
    return [(example, explainer.attribute(example)) for example in examples]


def save_heatmap_html(path: str | os.PathLike[str],
                      items: Sequence[tuple[MCQExample, WordAttribution]], **kwargs: Any) -> Path:
    """Write :func:`heatmap_html` to ``path`` (UTF-8). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(heatmap_html(items, **kwargs), encoding="utf-8")
    return path


def heatmap_figure(example: MCQExample, attribution: WordAttribution, *, k: int = 5,
                   width: float = 10.0) -> Any:
    """A matplotlib figure of the question with each word shaded by its score.

    Returns:
        The ``matplotlib.figure.Figure`` (save it with ``fig.savefig(...)``).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    scale = max((abs(s) for s in attribution.scores), default=0.0)
    text = example.render()
    lines: list[list[tuple[str, float | None]]] = [[]]

    def add_text(between: str) -> None:
        for number, part in enumerate(between.split("\n")):
            if number:
                lines.append([])
            if part.strip():
                lines[-1].append((part.strip(), None))

    cursor = 0
    for word, score in zip(attribution.words, attribution.scores, strict=True):
        add_text(text[cursor : word.start])
        lines[-1].append((word.text, score))
        cursor = word.end
    add_text(text[cursor:])
    figure = plt.figure(figsize=(width, 0.45 * (len(lines) + 3)))
    axes = figure.add_axes((0, 0, 1, 1))
    axes.axis("off")
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    line_height = 1.0 / (len(lines) + 3)
    y = 1 - 1.5 * line_height
    for line in lines:
        x = 0.02
        for token, value in line:
            box: dict[str, Any] | None = None
            if value is not None:
                rgb = POSITIVE_RGB if value >= 0 else NEGATIVE_RGB
                box = {"facecolor": tuple(c / 255 for c in rgb), "alpha": _alpha(value, scale),
                       "edgecolor": "none", "pad": 2}
            label = axes.text(x, y, token, fontsize=12, transform=axes.transAxes, bbox=box,
                              va="center")
            extent = label.get_window_extent(renderer).transformed(axes.transAxes.inverted())
            if extent.x1 > 0.98 and x > 0.02:  # wrap long lines
                y -= line_height
                label.set_position((0.02, y))
                extent = label.get_window_extent(renderer).transformed(
                    axes.transAxes.inverted())
            x = extent.x1 + 0.008
        y -= line_height
    keywords = attribution.top_k(k)
    if keywords:
        axes.text(0.02, max(y, 0.02), keyword_rationale(keywords, attribution.label),
                  fontsize=11, style="italic", transform=axes.transAxes, va="center")
    return figure
