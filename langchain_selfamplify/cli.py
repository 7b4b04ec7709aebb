"""``selfamplify``: the command line.

``selfamplify run`` with no arguments runs Self-AMPLIFY on the embedded
SmolLM2-135M-Instruct with the bundled demo set, offline.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from langchain_selfamplify.cli_options import option_message, parse_integers
from langchain_selfamplify.cli_printout import print_run_result
from langchain_selfamplify.data.registry import DATASETS
from langchain_selfamplify.errors import (
    HANDLED_FAILURES,
    GridStoppedError,
    SelfAmplifyError,
    describe_transient,
    is_transient,
)
from langchain_selfamplify.pipeline import RunConfig, run_self_amplify
from langchain_selfamplify.rationales.base import METHODS
from langchain_selfamplify.selection.strategies import STRATEGIES

app = typer.Typer(help="Self-AMPLIFY: amplify the few-shot prompt of a small language model "
                       "with rationales it writes itself.",
                  no_args_is_help=True, add_completion=False)
console = Console()

MODEL_HELP = ("Embedded model (smollm2-135m, gemma3-270m, qwen2.5-coder-1.5b), HF model id, "
              "local directory or .gguf file. Default: the embedded SmolLM2-135M-Instruct.")
"""Help of every command's ``--model``."""
EXIT_BAD_INPUT = 2
"""A bad input was refused before any work (or a run found its outputs unusable)."""
EXIT_STOPPED = 3
"""The environment failed (model server unreachable, out of memory): work done is kept
and the same command resumes."""
EXIT_CELLS_FAILED = 4
"""The grid finished, but some cells failed for good (a method the model cannot run)."""

# The served-model options, shared by run, explain and evaluate.
BaseUrl = Annotated[str | None, typer.Option(
    help="OpenAI-compatible API root of a served model (vLLM, llama.cpp, Ollama...), e.g. "
         "http://127.0.0.1:8080/v1; --model is then not loaded. The API key is read from "
         "$SELFAMPLIFY_API_KEY or $OPENAI_API_KEY.")]
ServedModel = Annotated[str | None, typer.Option(
    help="The served model's name (with --base-url).")]
Tokenizer = Annotated[str | None, typer.Option(
    help="The served model's tokenizer (HF id, directory or .gguf file) for its chat "
         "template and token counts (with --base-url; else the plain layout).")]
Overwrite = Annotated[bool, typer.Option(
    help="If the output directory holds a run with other settings, move it aside "
         "(kept under previous-<timestamp>/) instead of refusing.")]
AnswerFormatOption = Annotated[str, typer.Option(
    help="letter: labels scored after 'The answer is ('; cloze: choice texts scored "
         "after 'The answer is:' (length-normalised).")]


@app.callback()
def main(
    threads: Annotated[str | None, typer.Option(
        help="CPU threads of the model: a number, or auto (the cores not kept busy by "
             "other processes; the default, or $SELFAMPLIFY_THREADS). Goes before the "
             "command: selfamplify --threads 1 evaluate ...")] = None,
) -> None:
    """Self-AMPLIFY for LangChain."""
    from langchain_selfamplify.threads import set_threads

    try:
        set_threads(threads)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=EXIT_BAD_INPUT) from exc


@app.command()
def run(
    model: Annotated[str | None, typer.Option(
        help=MODEL_HELP)] = None,
    dataset: Annotated[str, typer.Option(
        help=f"Registered name ({', '.join(DATASETS)}), file path or HF id.")] = "demo",
    data_dir: Annotated[str | None, typer.Option(
        help="Local directory of the registered datasets (else $SELFAMPLIFY_DATA_DIR, "
             "else the Hub).")] = None,
    pool_split: Annotated[str, typer.Option(help="Split to select demonstrations from.")]
        = "train",
    test_split: Annotated[str, typer.Option(help="Split to measure accuracy on.")] = "test",
    method: Annotated[str, typer.Option(
        help=f"Rationale method: {', '.join(METHODS)}.")] = "ph_cot",
    strategy: Annotated[str, typer.Option(
        help=f"Selection strategy: {', '.join(STRATEGIES)}.")] = "success",
    shots: Annotated[int, typer.Option("--shots", "-n", help="Demonstrations.")] = 8,
    k: Annotated[int, typer.Option(help="Keywords per keyword rationale.")] = 5,
    steps: Annotated[int, typer.Option(help="Steps per Ph-CoT rationale.")] = 3,
    pool_size: Annotated[int | None, typer.Option(help="Cap on the pool size.")] = None,
    test_size: Annotated[int, typer.Option(help="Test questions.")] = 64,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    batch_size: Annotated[int, typer.Option(
        help="Most prompts per forward pass (fewer when their tokens pass the memory "
             "bound).")] = 16,
    device: Annotated[str | None, typer.Option(help="cpu or cuda (default: auto).")] = None,
    answer_format: AnswerFormatOption = "letter",
    balance_labels: Annotated[bool, typer.Option(
        help="Spread the demonstrations' gold labels over the labels.")] = False,
    output_dir: Annotated[str, typer.Option(help="Where the JSON outputs go.")]
        = "selfamplify_output",
    overwrite: Overwrite = False,
    base_url: BaseUrl = None,
    served_model: ServedModel = None,
    tokenizer: Tokenizer = None,
) -> None:
    """Select demonstrations, explain them, and compare the amplified prompt with IO.

    Exit codes: 0 done; 2 bad input, refused before any work; 3 stopped on a failure of
    the environment (model server unreachable, out of memory), the work done kept in the
    output directory's checkpoint, so the same command resumes.
    """
    logging.basicConfig(level=logging.WARNING)
    try:
        config = RunConfig(
            model=model, dataset=dataset, data_dir=data_dir, pool_split=pool_split,
            test_split=test_split, method=method, strategy=strategy, shots=shots, k=k,
            steps=steps, pool_size=pool_size, test_size=test_size, seed=seed,
            batch_size=batch_size, device=device, output_dir=output_dir,
            answer_format=answer_format,  # type: ignore[arg-type]
            balance_labels=balance_labels, base_url=base_url, served_model=served_model,
            tokenizer=tokenizer,
        )
        result = run_self_amplify(config, overwrite=overwrite)
    except HANDLED_FAILURES as exc:
        _fail(exc)
    print_run_result(result, console)


@app.command()
def explain(
    question: Annotated[str, typer.Argument(
        help='The question with inline options: "Which ...? (A) ... (B) ..."')],
    answer: Annotated[str, typer.Option(help="Label of the answer to explain, e.g. B.")],
    method: Annotated[str, typer.Option(
        help=f"Rationale method: {', '.join(METHODS)}.")] = "deeplift",
    k: Annotated[int, typer.Option(help="Keywords in the rationale.")] = 5,
    steps: Annotated[int, typer.Option(help="Steps of a Ph-CoT rationale.")] = 3,
    model: Annotated[str | None, typer.Option(
        help=MODEL_HELP)] = None,
    html: Annotated[str | None, typer.Option(
        help="Write the word heatmap as a self-contained HTML file.")] = None,
    png: Annotated[str | None, typer.Option(
        help="Write the word heatmap as a PNG figure.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu or cuda (default: auto).")] = None,
    answer_format: AnswerFormatOption = "letter",
    word_absence: Annotated[str, typer.Option(
        help="How attribution methods take a word out: mask (its tokens replaced by the "
             "mask token) or delete (perturbation methods only).")] = "mask",
    base_url: BaseUrl = None,
    served_model: ServedModel = None,
    tokenizer: Tokenizer = None,
) -> None:
    """Explain one answer: print the top-k words and the rationale, draw the heatmap."""
    from langchain_selfamplify.data.example import MCQExample
    from langchain_selfamplify.data.formats import normalise_label, split_inline_options
    from langchain_selfamplify.evaluation.predict import check_answer_options
    from langchain_selfamplify.models.factory import check_backend_source, load_backend
    from langchain_selfamplify.rationales.absence import WORD_ABSENCES
    from langchain_selfamplify.rationales.attribution import AttributionMethod
    from langchain_selfamplify.rationales.base import (
        build_method,
        check_word_absence,
        get_method,
    )
    from langchain_selfamplify.rationales.words import keyword_rationale
    from langchain_selfamplify.wording import ANSWER_FORMATS

    try:
        cls = get_method(method)
        parsed = split_inline_options(question)
        if parsed is None:
            raise ValueError("the question needs inline options: '... (A) first (B) second'")
        stem, choices = parsed
        example = MCQExample(id="question", question=stem, choices=choices,
                             answer=normalise_label(answer))
        for option, value, known in (("--answer-format", answer_format, ANSWER_FORMATS),
                                     ("--word-absence", word_absence, WORD_ABSENCES)):
            if value not in known:
                raise ValueError(f"{option} must be {' or '.join(known)} (got {value!r})")
        check_answer_options(answer_format, [example])  # type: ignore[arg-type]
        check_word_absence(cls, word_absence)  # type: ignore[arg-type]
        attributes = issubclass(cls, AttributionMethod)
        if (html or png) and not attributes:
            raise ValueError(f"{method} writes free text; heatmaps need an attribution "
                             "method such as deeplift or kernelshap")
        check_backend_source(model, base_url=base_url, tokenizer=tokenizer)
        backend = load_backend(model, base_url=base_url, served_model=served_model,
                               tokenizer=tokenizer, device=device)
        explainer = build_method(backend, method, k=k, n_steps=steps,
                                 answer_format=answer_format,  # type: ignore[arg-type]
                                 word_absence=word_absence)  # type: ignore[arg-type]
        if isinstance(explainer, AttributionMethod):
            explainer.check([example])
            attribution = explainer.attribute(example)
            console.print("top words: " + ", ".join(attribution.top_k(k)))
            rationale = keyword_rationale(attribution.top_k(k), example.answer)
        else:
            (rationale,) = explainer.explain([example])
    except (SelfAmplifyError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from exc
    console.print(f"rationale: {rationale}")
    if isinstance(explainer, AttributionMethod):
        from langchain_selfamplify.visualize import heatmap_figure, save_heatmap_html

        if html:
            save_heatmap_html(html, [(example, attribution)], k=k, method=method)
            console.print(f"wrote {html}")
        if png:
            heatmap_figure(example, attribution, k=k).savefig(png, dpi=120)
            console.print(f"wrote {png}")


def _names(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


@app.command()
def evaluate(
    datasets: Annotated[str, typer.Option(
        help=f"Comma-separated datasets ({', '.join(DATASETS)} or files).")] = "demo",
    methods: Annotated[str, typer.Option(
        help="Comma-separated: io, auto_cot, amplify, DSPy's dspy_bootstrap and "
             "dspy_labeled (the [dspy] extra) and rationale methods "
             f"({', '.join(METHODS)}).")] = "io,auto_cot,amplify,deeplift,kernelshap,"
                                             "self_topk,ph_cot",
    strategies: Annotated[str, typer.Option(
        help="Comma-separated strategies for the rationale methods.")] = "success,error",
    seeds: Annotated[str, typer.Option(
        help="Comma-separated seeds (each draws its own pool sample, so its own "
             "demonstrations; the test questions stay fixed).")] = "0,1,2",
    model: Annotated[str | None, typer.Option(
        help=MODEL_HELP)] = None,
    data_dir: Annotated[str | None, typer.Option(
        help="Local directory of the registered datasets.")] = None,
    shots: Annotated[int, typer.Option("--shots", "-n", help="Demonstrations.")] = 8,
    k: Annotated[int, typer.Option(help="Keywords per keyword rationale.")] = 5,
    steps: Annotated[int, typer.Option(help="Steps per Ph-CoT rationale.")] = 3,
    pool_size: Annotated[int, typer.Option(help="Pool sampled per dataset and seed.")] = 100,
    test_size: Annotated[int, typer.Option(
        help="Test questions per dataset (every question outside the pool where fewer).")]
        = 200,
    answer_mode: Annotated[str, typer.Option(
        help="score: answers scored after the rationale; generate: free text, parsed.")]
        = "score",
    answer_format: AnswerFormatOption = "letter",
    balance_labels: Annotated[bool, typer.Option(
        help="Spread the demonstrations' gold labels over the labels.")] = False,
    permute: Annotated[bool, typer.Option(
        help="Test-time choice permutation (one pass per cyclic order).")] = False,
    calibrate: Annotated[bool, typer.Option(
        help="Contextual calibration of label scores (letter format).")] = False,
    device: Annotated[str | None, typer.Option(help="cpu or cuda (default: auto).")] = None,
    output_dir: Annotated[str, typer.Option(
        help="Where predictions.jsonl, cells.jsonl, prompts/, checkpoints/, table.md and "
             "figure.png go; rerun with the same directory to resume.")] = "selfamplify_eval",
    overwrite: Overwrite = False,
    base_url: BaseUrl = None,
    served_model: ServedModel = None,
    tokenizer: Tokenizer = None,
    dtype: Annotated[str | None, typer.Option(
        help="Weight dtype of a local model, e.g. bfloat16 (about twice as fast on a "
             "recent CPU, approximate: see docs/results/grid.md for its agreement with "
             "float32). Default: the checkpoint's (float32 for GGUF).")] = None,
    generate_url: Annotated[str | None, typer.Option(
        help="OpenAI-compatible API root serving the same model as --model (e.g. a "
             "llama.cpp server on its GGUF file): it writes every rationale, the local "
             "model scores and explains. Approximate: see docs/results/grid.md for its "
             "agreement with the local path and its speed.")] = None,
    ray: Annotated[str | None, typer.Option(
        "--ray", help="Run the cells as Ray tasks: 'local' starts a local Ray cluster, "
                      "'auto' or ray://HOST:10001 joins one. Each worker loads the model "
                      "once; outputs and resuming are as in a local run. Needs the \\[ray] "
                      "extra.")] = None,
    ray_workers: Annotated[int | None, typer.Option(
        help="Model-holding Ray workers (default: the cluster's CPUs, or GPUs with "
             "--ray-gpus).")] = None,
    ray_gpus: Annotated[float, typer.Option(
        help="GPUs each Ray worker reserves (e.g. 1 on a GPU cluster).")] = 0,
    retry_failed: Annotated[bool, typer.Option(
        help="Run again the cells an earlier run recorded as failed.")] = False,
) -> None:
    """Run (or resume) a datasets x methods x strategies x seeds grid; write the table.

    Exit codes: 0 every cell done; 2 bad input, refused before any work; 3 stopped on a
    failure of the environment (model server unreachable, out of memory), finished work
    kept, the same command resumes; 4 finished with cells that failed for good.
    """
    from langchain_selfamplify.evaluation.grid import (
        GridConfig,
        check_output_dir,
        load_grid_splits,
        run_grid,
    )
    from langchain_selfamplify.evaluation.report import (
        comparison_table,
        grid_figure,
        grid_table,
    )
    from langchain_selfamplify.models.factory import check_backend_source, load_backend

    logging.basicConfig(level=logging.WARNING)
    try:
        config = GridConfig(
            datasets=_names(datasets), methods=_names(methods), strategies=_names(strategies),
            seeds=parse_integers(seeds, "--seeds"), shots=shots, k=k, steps=steps,
            pool_size=pool_size, test_size=test_size, data_dir=data_dir,
            answer_mode=answer_mode, answer_format=answer_format,  # type: ignore[arg-type]
            balance_labels=balance_labels, permute=permute, calibrate=calibrate,
            output_dir=output_dir)
        config.validate_names()
        for dataset in config.datasets:
            if dataset not in DATASETS and not Path(dataset).exists():
                from langchain_selfamplify.errors import UnknownNameError

                raise UnknownNameError("dataset", dataset, DATASETS)
        # Everything that can be refused is refused before the model loads.
        check_output_dir(config, overwrite=overwrite)
        splits = load_grid_splits(config)
        check_backend_source(model, base_url=base_url, tokenizer=tokenizer,
                             generate_url=generate_url)
        local = {"device": device, **({"torch_dtype": dtype} if dtype else {})}
        load = functools.partial(load_backend, model, base_url=base_url,
                                 served_model=served_model, tokenizer=tokenizer,
                                 generate_url=generate_url, **local)
        if ray is not None:
            from langchain_selfamplify.evaluation.ray_grid import run_grid_on_ray

            summary = run_grid_on_ray(config, load, address=ray, workers=ray_workers,
                                      num_gpus=ray_gpus, splits=splits,
                                      retry_failed=retry_failed)
        else:
            summary = run_grid(config, load(), splits=splits, retry_failed=retry_failed)
    except HANDLED_FAILURES as exc:
        _fail(exc)
    table = grid_table(summary)
    comparisons = "\n\n".join(comparison_table(summary, b) for b in ("io", "auto_cot", "amplify"))
    out = Path(output_dir)
    (out / "table.md").write_text(table + "\n\n" + comparisons + "\n", encoding="utf-8")
    grid_figure(summary, out / "figure.png")
    console.print(table)
    written = [out / name for name in ("table.md", "figure.png", "predictions.jsonl",
                                       "cells.jsonl")]
    console.print("wrote " + ", ".join(str(path) for path in written if path.exists()))
    failed = [c for c in summary["cells"] if c["status"] == "failed"]
    if failed:
        console.print(f"[red]{len(failed)} of {len(summary['cells'])} cells failed[/red] (see "
                      "the table; rerun with --retry-failed to run them again)")
        raise typer.Exit(code=EXIT_CELLS_FAILED)


def _fail(error: BaseException) -> NoReturn:
    """Print ``error`` and exit: :data:`EXIT_STOPPED` for a failure of the environment
    (the work done is kept; the same command resumes), else :data:`EXIT_BAD_INPUT`."""
    if isinstance(error, GridStoppedError) or is_transient(error):
        reason = str(error) if isinstance(error, GridStoppedError) else (
            f"{describe_transient(error)}. Work done is kept; run the same command again to "
            "resume once the cause is fixed.")
        console.print(f"[red]stopped:[/red] {reason}")
        raise typer.Exit(code=EXIT_STOPPED) from error
    if not isinstance(error, SelfAmplifyError | ValueError):
        raise error
    message = option_message(error) if isinstance(error, ValidationError) else str(error)
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code=EXIT_BAD_INPUT) from error


if __name__ == "__main__":
    app()
