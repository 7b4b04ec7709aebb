"""Auto-CoT (Zhang et al., 2023): diverse demonstrations with zero-shot chain of thought.

1. Embed the pool's questions with Sentence-BERT (all-MiniLM-L6-v2, offline).
2. k-means with k = n clusters (scikit-learn, seeded).
3. In each cluster, from the question nearest the centre outwards, take the first that
   passes the filters: question of at most 60 words, a zero-shot "Let's think step by
   step." rationale (written by the SLM itself) of at most 5 steps (the trigger sentence
   is not a step) that ends on an explicit final answer ("the answer is (B)", or the
   text of one choice after "the answer is"); a rationale that only lists the options
   does not pass.
The demonstration's answer is the one the model reasoned its way to: no gold label is
used anywhere. A cluster where no question passes falls back to its nearest question,
answered by label scoring after its rationale (counted in the prompt's metadata).

The zero-shot rationales are the build's dear part (up to ``candidates_per_cluster``
chains of thought per cluster): each is handed to ``on_written`` as its reply ends and
read back from ``written``, so a stopped build redoes only the replies it had not
finished.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from langchain_selfamplify.baselines.encoder import default_encoder_path
from langchain_selfamplify.checkpoint import content_key
from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.deprecation import accepts_renamed_arguments
from langchain_selfamplify.errors import SelectionError
from langchain_selfamplify.models.answer_formats import score_answers
from langchain_selfamplify.models.backend import ModelBackend, generate_each
from langchain_selfamplify.prompting.amplified import AmplifiedPrompt
from langchain_selfamplify.prompting.messages import question_text, zero_shot_prompt
from langchain_selfamplify.wording import RATIONALE_STOP, AnswerFormat, answer_prefix

ZERO_SHOT_TRIGGER = "Let's think step by step."
_STEP_SPLIT = re.compile(r"(?:\n+|(?<=[.!?])\s+)")
_FINAL_ANSWER = re.compile(r"answer\s+is\s*:?\s*(.+)", re.IGNORECASE)
_LABEL = re.compile(r"^\(?\s*([A-Za-z0-9])\s*\)?(?![A-Za-z0-9])")


def count_steps(rationale: str) -> int:
    """Reasoning steps of a rationale: its non-empty lines or sentences, the zero-shot
    trigger sentence not counted."""
    body = rationale.strip()
    if body.startswith(ZERO_SHOT_TRIGGER):
        body = body[len(ZERO_SHOT_TRIGGER):]
    return len([p for p in _STEP_SPLIT.split(body.strip()) if p.strip()])


def explicit_answer(rationale: str, example: MCQExample) -> str | None:
    """The label a rationale's explicit final answer names, or ``None``.

    Only the last "answer is ..." counts: followed by a valid label ("(B)", "B") or by
    the text of exactly one choice. Options merely listed are no answer.
    """
    found = _FINAL_ANSWER.findall(rationale)
    if not found:
        return None
    tail = found[-1].strip()
    label = _LABEL.match(tail)
    valid = {lab.upper(): lab for lab in example.labels}
    if label and label.group(1).upper() in valid:
        return valid[label.group(1).upper()]
    lowered = tail.lower()
    named = [lab for lab, text in example.choices.items() if lowered.startswith(text.lower())]
    return named[0] if len(named) == 1 else None


class AutoCoT:
    """Build an Auto-CoT prompt from an unlabelled view of the pool.

    Args:
        backend: The model that writes the zero-shot rationales (and is prompted later).
        n: Demonstrations (= clusters). Defaults to 8.
        encoder: sentence-transformers model id or directory. Defaults to the bundled
            all-MiniLM-L6-v2.
        max_question_words: Question filter. Defaults to 60.
        max_steps: Rationale filter. Defaults to 5.
        max_new_tokens: Token cap of a rationale. Defaults to 96.
        candidates_per_cluster: Questions tried per cluster, nearest first. Defaults to 4.
        seed: k-means seed. Defaults to 0.
        answer_format: How the prompt's demonstrations end (``"letter"`` or ``"cloze"``).
            Defaults to ``"letter"``.
    """

    @accepts_renamed_arguments
    def __init__(
        self,
        backend: ModelBackend,
        n: int = 8,
        encoder: str | None = None,
        max_question_words: int = 60,
        max_steps: int = 5,
        max_new_tokens: int = 96,
        candidates_per_cluster: int = 4,
        seed: int = 0,
        answer_format: AnswerFormat = "letter",
    ) -> None:
        self.backend = backend
        self.n = n
        self.encoder = encoder
        self.max_question_words = max_question_words
        self.max_steps = max_steps
        self.max_new_tokens = max_new_tokens
        self.candidates_per_cluster = candidates_per_cluster
        self.seed = seed
        self.answer_format: AnswerFormat = answer_format

    def embed(self, questions: Sequence[str]) -> np.ndarray:
        """Sentence embeddings of the questions (normalised)."""
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(self.encoder or str(default_encoder_path()), device="cpu")
        return np.asarray(model.encode(list(questions), normalize_embeddings=True,
                                       show_progress_bar=False))

    def clusters(self, pool: Sequence[MCQExample]) -> list[list[int]]:
        """Pool indices per cluster, nearest to the cluster centre first."""
        from sklearn.cluster import KMeans

        if len(pool) < self.n:
            raise SelectionError(f"Auto-CoT needs n={self.n} clusters; the pool has "
                                 f"{len(pool)} questions")
        vectors = self.embed([question_text(ex) for ex in pool])
        kmeans = KMeans(n_clusters=self.n, random_state=self.seed, n_init=10).fit(vectors)
        distances = kmeans.transform(vectors)
        groups: list[list[int]] = []
        for cluster in range(self.n):
            members = np.flatnonzero(kmeans.labels_ == cluster)
            groups.append(sorted(members.tolist(), key=lambda i: distances[i, cluster]))
        return groups

    def build(self, pool: Sequence[MCQExample], *,
              written: Iterable[Mapping[str, str]] = (),
              on_written: Callable[[list[dict[str, str]]], None] | None = None,
              ) -> AmplifiedPrompt:
        """The Auto-CoT prompt: one demonstration per cluster.

        Candidates are written in rounds: the nearest question of every cluster in one
        batch, then the next one only for the clusters still without a demonstration,
        so no rationale is written for a question after its cluster's pick.

        Args:
            pool: The unlabelled view of the pool (gold answers are never read).
            written: Rationale records of an earlier build (``on_written``'s), reused
                where their :meth:`key` matches: same model, trigger, cap and question.
                Defaults to none.
            on_written: Called with each new ``{"key", "example_id", "rationale"}``
                record as soon as its reply ends, e.g. to checkpoint it. Defaults to
                none.
        """
        known = {record["key"]: record["rationale"] for record in written}
        candidates = []
        for members in self.clusters(pool):
            short = [i for i in members
                     if len(pool[i].question.split()) <= self.max_question_words] or members
            candidates.append([pool[i] for i in short[: self.candidates_per_cluster]])
        picks: list[tuple[MCQExample, str, str] | None] = [None] * len(candidates)
        first_written: list[str] = []
        for attempt in range(self.candidates_per_cluster):
            open_clusters = [c for c, tried in enumerate(candidates)
                             if picks[c] is None and attempt < len(tried)]
            if not open_clusters:
                break
            rationales = self._rationales([candidates[c][attempt] for c in open_clusters],
                                          known, on_written)
            if attempt == 0:
                first_written = rationales
            for cluster, rationale in zip(open_clusters, rationales, strict=True):
                example = candidates[cluster][attempt]
                answer = explicit_answer(rationale, example)
                if answer and count_steps(rationale) <= self.max_steps:
                    picks[cluster] = (example, rationale, answer)
        demos: list[MCQExample] = []
        fallbacks = 0
        for cluster, chosen in enumerate(picks):
            if chosen is None:
                fallbacks += 1
                example, rationale = candidates[cluster][0], first_written[cluster]
                chosen = (example, rationale, self._scored_answer(example, rationale))
            example, rationale, answer = chosen
            # The model's own answer replaces the gold one: Auto-CoT uses no labels.
            demos.append(example.model_copy(update={
                "answer": answer, "rationale": _trim_steps(rationale, self.max_steps),
                "metadata": {**example.metadata, "rationale_method": "auto_cot"}}))
        return AmplifiedPrompt(examples=demos, answer_format=self.answer_format, metadata={
            "method": "auto_cot", "n": self.n, "seed": self.seed, "fallbacks": fallbacks})

    def key(self, example: MCQExample) -> str:
        """A zero-shot rationale's checkpoint key: the model, the trigger, the token cap
        and the question (not its gold answer, which Auto-CoT never reads)."""
        return content_key({
            "method": "auto_cot", "trigger": ZERO_SHOT_TRIGGER,
            "max_new_tokens": self.max_new_tokens, "model": self.backend.name,
            "example": example.model_dump(exclude={"answer", "rationale", "metadata"})})

    def _rationales(self, examples: Sequence[MCQExample], known: dict[str, str],
                    on_written: Callable[[list[dict[str, str]]], None] | None) -> list[str]:
        """The examples' zero-shot rationales: those in ``known`` reused, the rest
        written in one batch, each added to ``known`` and handed to ``on_written`` as
        its reply ends."""
        keys = [self.key(ex) for ex in examples]
        todo = [(key, ex) for key, ex in zip(keys, examples, strict=True) if key not in known]
        def keep(index: int, reply: str) -> None:
            key, example = todo[index]
            known[key] = f"{ZERO_SHOT_TRIGGER} {reply.strip()}".strip()
            if on_written is not None:
                on_written([{"key": key, "example_id": example.id, "rationale": known[key]}])

        if todo:
            prompts = [zero_shot_prompt(self.backend, ex, ZERO_SHOT_TRIGGER) for _, ex in todo]
            generate_each(self.backend, prompts, keep, max_new_tokens=self.max_new_tokens,
                          desc="Auto-CoT rationales")
        return [known[key] for key in keys]

    def _scored_answer(self, example: MCQExample, rationale: str) -> str:
        stem = rationale.split(RATIONALE_STOP)[0].strip()
        prompt = zero_shot_prompt(self.backend, example,
                                  f"{stem}\n{answer_prefix(self.answer_format)}")
        return score_answers(self.backend, [prompt], [example.choices],
                             self.answer_format)[0].predicted


def _trim_steps(rationale: str, max_steps: int) -> str:
    """At most ``max_steps`` steps, never containing the test-time stop string."""
    stem = rationale.split(RATIONALE_STOP)[0]
    steps = [p.strip() for p in _STEP_SPLIT.split(stem.strip()) if p.strip()]
    return " ".join(steps[:max_steps]) or ZERO_SHOT_TRIGGER
