"""An offline sentence-classification task that the project generates: templated movie-review sentiment.

The thesis fine-tunes on GLUE/SuperGLUE tasks (SST-2, MNLI, ...) downloaded with ``datasets``; nothing of that
kind ships in a package.  So this module writes its own data, reproducibly from a seed.  Each sentence is one or
two clauses, ``<subject> <verb> [not] [intensifier] <adjective>``, joined by ``but``; the label is the sentiment of
the last clause after negation (``but`` makes the second clause decide, as in "the plot was dull but the acting
was superb").  Lexical cues alone are therefore not enough: a model has to read negation and clause order.

``train`` has ``n_train`` sentences (the thesis uses 512), ``test`` is drawn from the same generator with disjoint
sentences.  Tokenization: the pretrained model's own tokenizer, or :class:`WordTokenizer` (a word-level vocabulary
of this task) for the tiny randomly initialised models of the smoke scale and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["NEGATIVE", "POSITIVE", "TextTask", "WordTokenizer", "encode", "load_task", "sentiment_task", "tsv_task"]

SUBJECTS = ["the movie", "this film", "the plot", "the acting", "the soundtrack", "the ending", "the cast",
            "the script", "the story", "the dialogue", "the pacing", "the camera work", "the humour", "the sequel"]
VERBS = ["was", "is", "felt", "seemed", "looked"]
INTENSIFIERS = ["", "", "really", "very", "quite", "truly", "rather", "so", "pretty"]
POSITIVE = ["good", "great", "wonderful", "brilliant", "moving", "delightful", "superb", "charming", "enjoyable",
            "excellent", "fun", "beautiful", "clever", "fresh", "gripping"]
NEGATIVE = ["bad", "awful", "boring", "dull", "terrible", "weak", "poor", "tedious", "clumsy", "bland", "messy",
            "painful", "silly", "flat", "forgettable"]


@dataclass(frozen=True)
class TextTask:
    """Sentences and 0/1 labels (1 = positive) of a train and a test split."""

    train_text: list[str]
    train_labels: torch.Tensor
    test_text: list[str]
    test_labels: torch.Tensor
    num_labels: int = 2


def _clause(g: torch.Generator) -> tuple[str, int]:
    def pick(xs):
        return xs[int(torch.randint(len(xs), (1,), generator=g))]

    positive = bool(torch.randint(2, (1,), generator=g))
    negated = float(torch.rand(1, generator=g)) < 0.3
    words = [pick(SUBJECTS), pick(VERBS)] + (["not"] if negated else []) + [pick(INTENSIFIERS)]
    words.append(pick(POSITIVE if positive else NEGATIVE))
    return " ".join(w for w in words if w), int(positive != negated)


def sentiment_task(n_train: int = 512, n_test: int = 256, seed: int = 0, two_clause: float = 0.5) -> TextTask:
    """Generate the task: ``two_clause`` is the share of ``"A but B"`` sentences (label from ``B``)."""
    if n_train < 1 or n_test < 1:
        raise ValueError(f"n_train and n_test must be >= 1; got {n_train}, {n_test}")
    if not 0 <= two_clause <= 1:
        raise ValueError(f"two_clause must be in [0, 1]; got {two_clause}")
    g = torch.Generator().manual_seed(seed)
    seen: set[str] = set()
    text, labels = [], []
    while len(text) < n_train + n_test:
        s, y = _clause(g)
        if float(torch.rand(1, generator=g)) < two_clause:
            s2, y = _clause(g)
            s = f"{s} but {s2}"
        if s in seen:  # keep train and test disjoint
            continue
        seen.add(s)
        text.append(s)
        labels.append(y)
    lab = torch.tensor(labels)
    return TextTask(text[:n_train], lab[:n_train], text[n_train:], lab[n_train:])


class WordTokenizer:
    """A word-level vocabulary of this task with BERT's special-token layout ([PAD]=0, [CLS], [SEP], [UNK])."""

    def __init__(self) -> None:
        words = sorted({w for xs in (SUBJECTS, VERBS, INTENSIFIERS, POSITIVE, NEGATIVE) for s in xs
                        for w in s.split()} | {"not", "but"})
        self.vocab = {w: i for i, w in enumerate(["[PAD]", "[CLS]", "[SEP]", "[UNK]"] + words)}

    def __len__(self) -> int:
        return len(self.vocab)

    def __call__(self, sentences: list[str], **_) -> dict[str, torch.Tensor]:
        rows = [[1] + [self.vocab.get(w, 3) for w in s.split()] + [2] for s in sentences]
        L = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), L, dtype=torch.long)
        mask = torch.zeros(len(rows), L, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r)
            mask[i, :len(r)] = 1
        return {"input_ids": ids, "attention_mask": mask}


def encode(tokenizer, sentences: list[str], device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Token ids and attention mask of ``sentences``, padded to the longest, on ``device``."""
    enc = tokenizer(list(sentences), padding=True, return_tensors="pt")
    return {k: enc[k].to(device) for k in ("input_ids", "attention_mask")}


def tsv_task(train_path: str, test_path: str, n_train: int = 512, n_test: int = 256, seed: int = 0,
             text_column: str = "sentence", label_column: str = "label") -> TextTask:
    """A GLUE-style task from local tab-separated files with a header (e.g. SST-2's ``train.tsv`` and ``dev.tsv``),
    subsampled as the thesis does (512 training and 256 test examples, Sec. 3.11).  Nothing is downloaded."""
    from pathlib import Path

    def read(path):
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        if not lines:
            raise ValueError(f"{path} is empty")
        head = lines[0].split("\t")
        if text_column not in head or label_column not in head:
            raise ValueError(f"{path}: header must name {text_column!r} and {label_column!r}; got {head}")
        ti, li = head.index(text_column), head.index(label_column)
        rows = [r.split("\t") for r in lines[1:] if r.strip()]
        return [r[ti] for r in rows], torch.tensor([int(r[li]) for r in rows])

    g = torch.Generator().manual_seed(seed)
    xtr, ytr = read(train_path)
    xte, yte = read(test_path)
    itr = torch.randperm(len(xtr), generator=g)[:n_train]
    ite = torch.randperm(len(xte), generator=g)[:n_test]
    return TextTask([xtr[i] for i in itr], ytr[itr], [xte[i] for i in ite], yte[ite],
                    int(max(ytr.max(), yte.max())) + 1)


def load_task(spec: str | tuple[str, str] | list[str], n_train: int, n_test: int, seed: int = 0) -> TextTask:
    """The task a configuration names: ``"generated"`` (:func:`sentiment_task`) or a pair of local GLUE-style
    ``(train.tsv, dev.tsv)`` paths (:func:`tsv_task`, the ``full`` scale)."""
    if spec == "generated":
        return sentiment_task(n_train, n_test, seed=seed)
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        from .pretrained import local_path  # relative paths are looked up under $EFFCOURSE_DATA

        return tsv_task(str(local_path(spec[0])), str(local_path(spec[1])), n_train=n_train, n_test=n_test,
                        seed=seed)
    raise ValueError(f"spec must be 'generated' or a (train.tsv, dev.tsv) pair of paths; got {spec!r}")
