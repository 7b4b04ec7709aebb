"""Loading datasets by registered name, Hugging Face id or local file."""

from __future__ import annotations

import csv
import json
import logging
import os
import random
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.data.formats import ColumnMap, detect_schema, row_to_example
from langchain_selfamplify.data.registry import DATA_DIR_ENV, DATASETS, get_dataset_spec
from langchain_selfamplify.errors import DatasetError

logger = logging.getLogger(__name__)

DEMO_FILE = Path(__file__).parent / "demo" / "demo_mcq.jsonl"
"""The bundled demo set (written by this project, see ``scripts/make_demo_set.py``)."""

OnError = Literal["raise", "skip"]


def load_dataset(
    name_or_path: str | os.PathLike[str],
    split: str = "train",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    columns: ColumnMap | None = None,
    limit: int | None = None,
    on_error: OnError = "raise",
) -> list[MCQExample]:
    """Load a multiple-choice dataset as a list of :class:`MCQExample`.

    ``name_or_path`` is one of:

    * a registered name (``arc_challenge``, ``commonsense_qa``, ``social_iqa``,
      ``snarks``, ``causal_judgment``, ``demo``): read from ``data_dir`` (or the
      directory in ``$SELFAMPLIFY_DATA_DIR``) when given, else from the Hugging Face Hub;
    * a local ``.csv``, ``.jsonl`` or ``.json`` file (AI2 ARC CSV, Hugging Face
      ``choices`` schema, BIG-bench ``task.json``, or any file with a ``columns`` map);
    * any other Hugging Face dataset id (``owner/name``), read through ``datasets``.

    Args:
        name_or_path: Registered name, file path or Hub id.
        split: Split to read. Local copies of BIG-bench tasks have a single ``"all"``
            split; carve a pool from it with :func:`train_test_split`. Defaults to
            ``"train"``.
        data_dir: Local directory laid out like ``shared/datasets``. Defaults to
            ``$SELFAMPLIFY_DATA_DIR``, then the Hub.
        columns: Column mapping for generic CSV/JSONL files. Defaults to
            auto-detection of the known schemas.
        limit: Keep only the first ``limit`` examples. Defaults to all.
        on_error: ``"raise"`` (default) stops at the first malformed row with a
            :class:`DatasetError` naming it; ``"skip"`` drops such rows with a warning.

    Raises:
        DatasetError: a file is missing or unreadable, or a row is malformed.
        UnknownNameError: neither a registered name, nor a file, nor a Hub id.
    """
    name = str(name_or_path)
    path = Path(name).expanduser()
    if name in DATASETS:
        examples = _load_registered(name, split, data_dir, on_error)
    elif path.suffix.lower() in {".csv", ".jsonl", ".json"} or path.exists():
        examples = load_file(path, columns=columns, on_error=on_error)
    elif "/" in name:
        examples = _load_from_hub(name, None, split, None, columns, on_error)
    else:
        get_dataset_spec(name)  # raises UnknownNameError listing the registered names
        raise AssertionError("unreachable")
    return examples[:limit] if limit is not None else examples


def _load_registered(
    name: str, split: str, data_dir: str | os.PathLike[str] | None, on_error: OnError
) -> list[MCQExample]:
    spec = get_dataset_spec(name)
    if name == "demo":
        return load_demo_set(split)
    local_dir = data_dir or os.environ.get(DATA_DIR_ENV)
    if not local_dir:
        return _load_from_hub(spec.hf_path or name, spec.hf_config, split, spec.hf_schema,
                              None, on_error)
    if split not in spec.local_files:
        raise DatasetError(
            f"The local copy of {name!r} has no split {split!r}; it has "
            f"{sorted(spec.local_files)}. For a dataset without a train split, load 'all' "
            "and carve a pool with train_test_split()."
        )
    return load_file(Path(local_dir) / spec.local_files[split], on_error=on_error)


def load_demo_set(split: str = "all") -> list[MCQExample]:
    """The bundled demo set: 128 four-option questions, answers balanced over A-D.

    Args:
        split: ``"all"`` (128), ``"pool"`` (64, for selection) or ``"test"`` (64).
    """
    if split not in {"all", "pool", "test", "train"}:
        raise DatasetError(f"The demo set has splits 'all', 'pool' and 'test', not {split!r}.")
    wanted = "pool" if split == "train" else split
    examples = load_file(DEMO_FILE)
    return [ex for ex in examples if wanted == "all" or ex.metadata.get("split") == wanted]


def load_file(
    path: str | os.PathLike[str],
    *,
    columns: ColumnMap | None = None,
    on_error: OnError = "raise",
) -> list[MCQExample]:
    """Load one local file (``.csv``, ``.jsonl``, or ``.json`` BIG-bench task / list)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"Dataset file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            rows: Iterable[tuple[str, Any]] = _read_csv(path)
        elif suffix == ".jsonl":
            rows = _read_jsonl(path)
        elif suffix == ".json":
            rows = _read_json(path)
        else:
            raise DatasetError(f"{path}: unsupported file type {suffix!r} (csv, jsonl, json)")
        return _convert(rows, str(path), None, columns, on_error)
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc


# Readers yield (where the row is, as an editor shows it: 1-based lines; row).
def _read_csv(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames:
            raise DatasetError(f"{path}: empty CSV file (no header row)")
        first_line = reader.line_num + 1
        for row in reader:
            yield f"line {first_line}", row  # a quoted field may span lines: its first
            first_line = reader.line_num + 1


def _read_jsonl(path: Path) -> Iterator[tuple[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield f"line {number}", json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}, line {number}: invalid JSON ({exc.msg})") from exc


def _read_json(path: Path) -> list[tuple[str, Any]]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from exc
    if isinstance(payload, dict) and isinstance(payload.get("examples"), list):
        # BIG-bench task.json: one JSON document, so an index into "examples", not a line.
        return [(f"example index {i} (0-based, in 'examples')", row)
                for i, row in enumerate(payload["examples"])]
    if isinstance(payload, list):
        return [(f"item index {i} (0-based)", row) for i, row in enumerate(payload)]
    raise DatasetError(f"{path}: expected a BIG-bench task (with 'examples') or a list of rows")


def _convert(
    rows: Iterable[tuple[str, Any]],
    source: str,
    schema: str | None,
    columns: ColumnMap | None,
    on_error: OnError,
) -> list[MCQExample]:
    examples: list[MCQExample] = []
    skipped: list[str] = []
    seen_ids: set[str] = set()
    for index, (location, row) in enumerate(rows):
        row_schema = "columns" if columns else schema
        if row_schema is None and isinstance(row, Mapping):
            row_schema = detect_schema(row)
        try:
            example = row_to_example(row, index, row_schema or "columns", source, columns,
                                     location)
        except DatasetError as exc:
            if on_error == "raise":
                raise
            skipped.append(str(exc))
            continue
        if example.id in seen_ids:  # ids must be unique: caches are keyed on them
            example = example.model_copy(update={"id": f"{example.id}#{index}"})
        seen_ids.add(example.id)
        if isinstance(row, Mapping) and "split" in row:
            example = example.model_copy(
                update={"metadata": {**example.metadata, "split": row["split"]}}
            )
        examples.append(example)
    if skipped:
        logger.warning("%s: skipped %d malformed row(s); first: %s", source, len(skipped),
                       skipped[0])
    if not examples:
        raise DatasetError(f"{source}: no usable rows")
    return examples


def _load_from_hub(
    path: str,
    config: str | None,
    split: str,
    schema: str | None,
    columns: ColumnMap | None,
    on_error: OnError,
) -> list[MCQExample]:
    import datasets  # deferred: importing datasets costs a second

    try:
        rows = datasets.load_dataset(path, config, split=split)
    except Exception as exc:  # datasets raises many unrelated types when offline
        raise DatasetError(
            f"Could not load {path!r} (config {config!r}, split {split!r}) from the Hugging "
            f"Face Hub: {exc}. Offline? Pass data_dir=... or set ${DATA_DIR_ENV} to a local "
            "copy, or give a file path."
        ) from exc
    return _convert(((f"row index {i}", row) for i, row in enumerate(rows)),
                    f"{path}:{split}", schema, columns, on_error)


def train_test_split(
    examples: list[MCQExample], test_size: int | float, seed: int = 0
) -> tuple[list[MCQExample], list[MCQExample]]:
    """Seeded disjoint (pool, test) split, for datasets without a train split.

    Args:
        examples: The examples to split.
        test_size: Number of test examples, or a fraction of ``examples`` when < 1.
        seed: Shuffling seed. Defaults to 0.
    """
    count = round(len(examples) * test_size) if test_size < 1 else int(test_size)
    if not 0 < count < len(examples):
        raise DatasetError(f"test_size={test_size} leaves no pool or no test set "
                           f"from {len(examples)} examples")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    test_ids = set(order[:count])
    pool = [ex for i, ex in enumerate(examples) if i not in test_ids]
    test = [ex for i, ex in enumerate(examples) if i in test_ids]
    return pool, test


def load_pool_and_test(
    name_or_path: str,
    *,
    pool_split: str = "train",
    test_split: str = "test",
    pool_size: int | None = None,
    test_size: int | None = None,
    seed: int = 0,
    split_seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
) -> tuple[list[MCQExample], list[MCQExample]]:
    """A disjoint (selection pool, test set) pair for one dataset.

    The test set depends on the dataset and ``split_seed`` only, never on ``seed``, so
    runs under several seeds answer the same test questions and compare question by
    question; each ``seed`` draws its own pool sample (and so its own demonstrations).

    Reads ``pool_split`` and ``test_split`` when the dataset has both; the test set is
    the first ``test_size`` questions of ``test_split``. A dataset with a single split
    (local BIG-bench tasks, CommonsenseQA's validation split, a single file) is carved
    with :func:`train_test_split` under ``split_seed``: the test set takes
    ``test_size`` questions, but always leaves a pool region of twice ``pool_size``
    (at most half the dataset), so that seeds draw different pools; a small dataset is
    tested on every question outside that region. The pool is then a ``seed``-ed
    sample of ``pool_size`` questions of the region.

    Args:
        name_or_path: Registered name, file path or Hub id.
        pool_split: Split to select demonstrations from.
        test_split: Split to measure accuracy on.
        pool_size: Pool sample size. Defaults to the whole pool split or region.
        test_size: Test questions. Defaults to the whole test split, or half a carved
            dataset.
        seed: Seed of the pool sample. Defaults to 0.
        split_seed: Seed of the pool/test carve of single-split datasets. Defaults to 0.
        data_dir: Local directory of the registered datasets.
    """
    spec = DATASETS.get(str(name_or_path))
    local = bool(data_dir or os.environ.get(DATA_DIR_ENV)) or (spec is not None and
                                                                 spec.name == "demo")
    splits = set(spec.local_files) if spec is not None and local else None
    single_file = spec is None and Path(str(name_or_path)).suffix != ""
    if single_file or (splits is not None and not {pool_split, test_split} <= splits):
        only = next(iter(sorted(splits))) if splits else pool_split
        examples = load_dataset(name_or_path, split=only, data_dir=data_dir)
        reserved = min(2 * pool_size if pool_size else len(examples), len(examples) // 2)
        carve = min(test_size or len(examples) // 2, len(examples) - max(1, reserved))
        pool, test = train_test_split(examples, carve, split_seed)
    else:
        pool = load_dataset(name_or_path, split=pool_split, data_dir=data_dir)
        test = load_dataset(name_or_path, split=test_split, data_dir=data_dir)
        overlap = {ex.id for ex in pool} & {ex.id for ex in test}
        if overlap:
            raise DatasetError(f"{len(overlap)} question(s) appear in both the pool and the "
                               f"test split of {name_or_path!s}, e.g. {sorted(overlap)[0]!r}")
        if test_size is not None:
            test = test[:test_size]
    if pool_size is not None and pool_size < len(pool):
        pool = random.Random(seed).sample(pool, pool_size)
    return pool, test
