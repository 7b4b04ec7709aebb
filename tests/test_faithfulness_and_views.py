"""Faithfulness metrics, heatmaps (rendered in headless Chromium) and `selfamplify explain`."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from langchain_selfamplify import METHODS, MCQExample, faithfulness_report
from langchain_selfamplify.cli import app
from langchain_selfamplify.evaluation.faithfulness import erase_words, keywords_of
from langchain_selfamplify.rationales.attribution import build_question_prompt
from langchain_selfamplify.rationales.words import WordAttribution, question_words
from langchain_selfamplify.visualize import heatmap_figure, heatmap_html, save_heatmap_html

EXAMPLE = MCQExample(
    id="x", question="Which gas do green plants absorb from the air?",
    choices={"A": "carbon dioxide", "B": "oxygen", "C": "helium", "D": "neon"}, answer="A",
)
QUESTION = "Which gas do plants absorb? (A) carbon dioxide (B) oxygen (C) helium (D) neon"


def test_keywords_are_read_from_keyword_rationales_only():
    assert keywords_of("The 2 keywords 'gas' and 'air' suggest that the answer is (A).") == [
        "gas", "air"]
    assert keywords_of("The keyword 'gas' suggests that the answer is (A).") == ["gas"]
    assert keywords_of("Step 1: it's 'gas'.") == []


def test_erasing_words_removes_exactly_their_tokens(tiny_slm):
    prompt = build_question_prompt(tiny_slm, EXAMPLE)
    gas = next(i for i, w in enumerate(prompt.words) if w.text == "gas")
    erased = erase_words(prompt, {gas}, tiny_slm, "delete")
    removed = [t for t, w in zip(prompt.input_ids, prompt.word_of_token) if w == gas]
    assert len(erased) == len(prompt.input_ids) - len(removed) and removed
    text = tiny_slm.tokenizer.decode(erased)
    assert "Which do green" in text.replace("  ", " ")


def test_masking_words_replaces_exactly_their_tokens_by_the_mask_token(tiny_slm):
    from langchain_selfamplify.rationales.absence import mask_token_id

    prompt = build_question_prompt(tiny_slm, EXAMPLE)
    gas = next(i for i, w in enumerate(prompt.words) if w.text == "gas")
    masked = erase_words(prompt, {gas}, tiny_slm)  # "mask", the default
    assert len(masked) == len(prompt.input_ids)
    for before, after, word in zip(prompt.input_ids, masked, prompt.word_of_token):
        assert after == (mask_token_id(tiny_slm.tokenizer) if word == gas else before)


def test_faithfulness_report_on_keyword_and_free_text_rationales(tiny_slm):
    examples = [
        EXAMPLE.with_rationale("The 2 keywords 'gas' and 'plants' suggest that the answer is (A)."),
        EXAMPLE.model_copy(update={"id": "y", "rationale": "Step 1: Plants take in CO2."}),
        EXAMPLE.model_copy(update={"id": "z"}),  # no rationale: skipped
    ]
    report = faithfulness_report(tiny_slm, examples, method="mixed", n_random=3)
    keyword, free = report.examples
    assert [e.id for e in report.examples] == ["x", "y"]
    assert keyword.keywords == ["gas", "plants"]
    # Each metric is the gold probability of the prompt it names, read independently.
    prompt = build_question_prompt(tiny_slm, EXAMPLE)

    def p_gold(tokens):
        return tiny_slm.score_token_lists([tokens], [EXAMPLE.labels])[0].prob("A")

    chosen = {i for i, w in enumerate(prompt.words) if w.text.lower() in {"gas", "plants"}}
    everything = set(range(len(prompt.words)))
    assert keyword.p_gold == pytest.approx(p_gold(prompt.input_ids), abs=1e-5)
    assert keyword.comprehensiveness == pytest.approx(
        keyword.p_gold - p_gold(erase_words(prompt, chosen, tiny_slm)), abs=1e-5)
    assert keyword.sufficiency == pytest.approx(
        keyword.p_gold - p_gold(erase_words(prompt, everything - chosen, tiny_slm)), abs=1e-5)
    with_rationale = tiny_slm.format_prompt(
        [{"role": "user", "content": EXAMPLE.render()}], "Step 1: Plants take in CO2.\n"
        "The answer is (")
    assert free.rationale_effect == pytest.approx(
        p_gold(tiny_slm.tokenize([with_rationale])[0]) - free.p_gold, abs=1e-5)
    assert free.comprehensiveness is None
    # The random-k baseline: the same seed's draws of 2 content words, erased and kept.
    import random

    from langchain_selfamplify.evaluation.faithfulness import _expand

    rng = random.Random(0)
    candidates = [i for i, w in enumerate(prompt.words) if w.is_candidate]
    draws = [_expand(prompt, rng.sample(candidates, 2)) for _ in range(3)]
    expected = sum(keyword.p_gold - p_gold(erase_words(prompt, words, tiny_slm))
                   for words in draws) / 3
    assert keyword.random_comprehensiveness == pytest.approx(expected, abs=1e-5)
    expected = sum(keyword.p_gold - p_gold(erase_words(prompt, everything - words, tiny_slm))
                   for words in draws) / 3
    assert keyword.random_sufficiency == pytest.approx(expected, abs=1e-5)
    assert report.means()["comprehensiveness"] == keyword.comprehensiveness


def attribution_for_page():
    words = question_words(EXAMPLE)
    scores = [0.0] * len(words)
    scores[[w.text for w in words].index("gas")] = 1.0       # strongly for: red
    scores[[w.text for w in words].index("helium")] = -1.0   # strongly against: blue
    return WordAttribution("x", "A", words, scores)


def test_heatmap_html_is_self_contained():
    page = heatmap_html([(EXAMPLE, attribution_for_page())], k=2, method="deeplift")
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert 'title="+1.0000" data-score="1.000000">gas</span>' in page
    assert "rgba(220, 38, 38, 1.000)" in page and "rgba(37, 99, 235, 1.000)" in page
    assert "\n(B) <span" in page and ">oxygen</span>" in page


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(page, shot, profile):
    """Render ``page`` in headless Chromium; count its red, blue and dark pixels."""
    from PIL import Image

    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", f"--screenshot={shot}",
         "--window-size=900,600", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    pixels = list(Image.open(shot).convert("RGB").getdata())
    red = sum(1 for r, g, b in pixels if r > 200 and g < 70 and b < 70)
    blue = sum(1 for r, g, b in pixels if b > 200 and r < 70 and 80 < g < 130)
    dark = sum(1 for r, g, b in pixels if r < 60 and g < 60 and b < 60)
    return red, blue, dark


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/test.sh "
                                              "installs it)")
def test_heatmap_renders_words_with_their_colours(tmp_path):
    """Against a page with the legend only, the word boxes add red, blue and text pixels."""
    page = save_heatmap_html(tmp_path / "heatmap.html", [(EXAMPLE, attribution_for_page())])
    legend_only = save_heatmap_html(tmp_path / "empty.html", [])
    red, blue, dark = screenshot(page, tmp_path / "shot.png", tmp_path / "profile")
    empty_red, empty_blue, empty_dark = screenshot(legend_only, tmp_path / "empty.png",
                                                   tmp_path / "profile2")
    assert red > empty_red + 150 and blue > empty_blue + 150
    assert dark > empty_dark + 1000


def test_heatmap_figure_draws_every_word(tmp_path):
    figure = heatmap_figure(EXAMPLE, attribution_for_page(), k=2)
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert {w.text for w in question_words(EXAMPLE)} <= set(texts)
    assert "?" in texts and "(A)" in texts
    figure.savefig(tmp_path / "fig.png")
    assert (tmp_path / "fig.png").stat().st_size > 1000


def test_explain_command_prints_words_and_writes_the_heatmap(tiny_model_dir, tmp_path):
    out = tmp_path / "out.html"
    result = CliRunner().invoke(app, ["explain", QUESTION, "--answer", "A", "--method",
                                      "feature_ablation", "--k", "3", "--model",
                                      str(tiny_model_dir), "--html", str(out)])
    assert result.exit_code == 0, result.output
    assert "top words:" in result.output and "The 3 keywords" in result.output
    assert "<span class=\"w\"" in out.read_text()


def test_explain_builds_its_method_with_the_answer_format_and_word_absence_given(
        tiny_model_dir, monkeypatch):
    from langchain_selfamplify.rationales import base

    seen: list[tuple[str, str]] = []
    real = base.build_method

    def recording(*args, **kwargs):
        method = real(*args, **kwargs)
        seen.append((method.answer_format, method.word_absence))
        return method

    monkeypatch.setattr(base, "build_method", recording)
    result = CliRunner().invoke(app, ["explain", QUESTION, "--answer", "A", "--method",
                                      "feature_ablation", "--k", "2", "--answer-format",
                                      "cloze", "--word-absence", "delete", "--model",
                                      str(tiny_model_dir)])
    assert result.exit_code == 0, result.output
    assert seen == [("cloze", "delete")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--answer", "A", "--answer-format", "essay"], "--answer-format must be letter or"),
        (["--answer", "A", "--word-absence", "blur"], "--word-absence must be mask or delete"),
        (["--answer", "A", "--method", "deeplift", "--word-absence", "delete"],
         "cannot delete words"),
        (["--answer", "E"], "not among the choice labels"),
        (["--answer", "A", "--method", "nope"], "Unknown rationale method 'nope'"),
        (["--answer", "A", "--method", "ph_cot", "--html", "x.html"], "heatmaps need"),
    ],
)
def test_explain_rejects_bad_input_before_loading_a_model(args, message):
    result = CliRunner().invoke(app, ["explain", QUESTION, *args, "--model", "/nonexistent"])
    assert result.exit_code == 2 and message in " ".join(result.output.split())


def test_every_explainer_is_offered_by_the_cli():
    result = CliRunner().invoke(app, ["explain", "--help"])
    flat = re.sub(r"[\s│]+", "", result.output)
    for name in METHODS:
        assert name in flat


def test_a_whole_prompt_gets_one_heatmap_section_per_demonstration(tiny_slm, demo_pool):
    from langchain_selfamplify.visualize import attribute_examples

    items = attribute_examples(tiny_slm, demo_pool[:3], "gradient_x_input", k=2)
    page = heatmap_html(items, k=2)
    assert page.count('<section class="example">') == 3
    assert all(ex.id in page for ex in demo_pool[:3])
    with pytest.raises(Exception, match="heatmaps need an attribution method"):
        attribute_examples(tiny_slm, demo_pool[:1], "ph_cot")
