"""The experiments of chapter 7, one function each: the notebook calls them and narrates what they return.

Every driver takes its seeds as arguments (the chapter derives them from its base seed, ``run.seeds(n)``; no seed is
fixed here): a model is built right after ``torch.manual_seed(seed)`` (:func:`~effcourse.smol.models.make_model`),
minibatches come from a ``torch.Generator`` seeded with the same seed, and the training noise from the global
generator.  Table rows are dicts whose keys are the column headings (plus numeric fields for the chapter's prose,
which the ``*_COLUMNS`` lists leave out of the table).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.data import Split
from .activations import add_activation_smol
from .baselines import sensitivity_allocation, uniform_pipeline
from .fixed_point import bops, fixed_point_grid, model_bits, quantization_error, quantize, zero_precision_allocation
from .models import count_quantized, make_cnn, make_model, quantized_names
from .parametrization import SMOL
from .training import Checkpoints, _phases, eval_error, finetune, precision_training, smol_pipeline

__all__ = [
    "ACTIVATION_COLUMNS",
    "CNN_COLUMNS",
    "LAYER_COLUMNS",
    "Sweep",
    "activation_comparison",
    "budget_split",
    "budget_split_row",
    "check_quantizer",
    "cnn_comparison",
    "compare_with_uniform",
    "cost_rows",
    "layerwise_comparison",
    "layerwise_row",
    "smol_run",
    "split_epochs",
    "uniform_run",
    "with_generator",
]

Augment = Callable[[torch.Tensor], torch.Tensor] | None

CNN_COLUMNS = ["seed", "λd", "bpp", "SMOL err before / after %", "SMOL* bpp", "SMOL* err after %",
               "uniform 2-bit before / after %", "FP %"]
ACTIVATION_COLUMNS = ["activations", "bits per activation", "err before / after FT %"]
LAYER_COLUMNS = ["λd", "SMOL-L bits per layer", "bpp", "err before / after %", "sensitivity bits per layer",
                 "sensitivity bpp", "sensitivity err before / after %"]


def with_generator(augment: Callable[..., torch.Tensor] | None, generator: torch.Generator) -> Augment:
    """``augment`` (as :func:`effcourse.core.data.augmentation` gives it) drawing from ``generator``; ``None``: none."""
    if augment is None:
        return None
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator; got {type(generator).__name__}")
    return functools.partial(augment, generator=generator)


def check_quantizer(n: int = 20000, max_bits: int = 8, seed: int = 0) -> dict[str, bool]:
    """Section 2's exact checks on ``n`` random weights in ``[-2, 2]``: ``closed_form`` (the closed-form quantizer is
    the nearest point of the enumerated grid, error ``<= 2^(1-p)``, ``p = 1..max_bits``), ``zpa_never_up`` (ZPA never
    raises an error at random precisions) and ``zpa_rule`` (it fires iff ``|w| <= 2^-p``)."""
    if not isinstance(max_bits, int) or not 1 <= max_bits <= 16:
        raise ValueError(f"max_bits must be an int in [1, 16]; got {max_bits!r}")
    gen = torch.Generator().manual_seed(seed)
    w = torch.rand(n, generator=gen, dtype=torch.float64) * 4 - 2
    closed_form = True
    for p in range(1, max_bits + 1):
        grid = fixed_point_grid(p)
        nearest = grid[(w[:, None] - grid[None, :]).abs().argmin(1)]
        err_closed, err_enum = (w - quantize(w, p)).abs(), (w - nearest).abs()
        closed_form &= bool(torch.allclose(err_closed, err_enum)) and bool((err_closed <= 2.0 ** (1 - p) + 1e-12).all())
    p_rand = torch.randint(1, max_bits + 1, w.shape, generator=gen)
    p_zpa = zero_precision_allocation(w, p_rand)
    never_up = bool((quantization_error(w, p_zpa) <= quantization_error(w, p_rand)).all())
    rule = bool(((p_zpa == 0) == (w.abs() <= 2.0 ** (-p_rand.double()))).all())
    return {"closed_form": closed_form, "zpa_never_up": never_up, "zpa_rule": rule}


def _budget(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The training protocol shared by SMOL and its baselines (epochs, learning rates, schedule)."""
    return dict(precision_epochs=cfg["precision_epochs"], finetune_epochs=cfg["finetune_epochs"],
                batch_size=cfg["batch_size"], lr_w=cfg["lr_w"], lr_ft=cfg["lr_ft"], momentum=cfg["momentum"],
                weight_decay=cfg["weight_decay"], milestones=cfg["milestones"], ft_milestones=cfg["ft_milestones"])


def _smol_options(cfg: Mapping[str, Any]) -> dict[str, Any]:
    return dict(lr_s=cfg["lr_s"], samples=cfg["samples"], p_init=cfg["p_init"])


# ------------------------------------------------------------------------------------------ section 4: the sweep
@dataclass
class Sweep:
    """SMOL and the uniform baselines over seeds and ``lambda * d`` (section 4); ``smol[ld][i]`` is seed ``i``."""

    lam_d: list[float]
    seeds: list[int]
    uniform_bits: list[int]
    uniform: list[dict]
    smol: dict[float, list[dict]]

    def mean(self, key: str, lam_d: float | None = None) -> float:
        """Mean of ``key`` over seeds: of the uniform runs (``lam_d=None``) or of SMOL at ``lam_d``."""
        rows = self.uniform if lam_d is None else self.smol[lam_d]
        return float(np.mean([r[key] for r in rows]))

    def bpp(self) -> list[float]:
        """Mean bits per parameter for each ``lambda * d``."""
        return [self.mean("bpp", ld) for ld in self.lam_d]

    def bpp_decreasing(self) -> bool:
        """Whether bpp falls strictly as ``lambda`` grows, on the mean and on every seed."""
        b = self.bpp()
        mean_ok = all(b1 > b2 for b1, b2 in zip(b, b[1:]))
        seeds_ok = all(all(self.smol[a][i]["bpp"] > self.smol[z][i]["bpp"] for a, z in zip(self.lam_d, self.lam_d[1:]))
                       for i in range(len(self.seeds)))
        return mean_ok and seeds_ok

    def nearest(self, bpp: float = 2.0) -> float:
        """The ``lambda * d`` whose mean bpp is closest to ``bpp``."""
        return min(self.lam_d, key=lambda ld: abs(self.mean("bpp", ld) - bpp))

    def below(self, bpp: float = 2.0) -> list[float]:
        """The ``lambda * d`` whose mean bpp is below ``bpp``."""
        return [ld for ld in self.lam_d if self.mean("bpp", ld) < bpp]

    def per_seed(self, key: str, lam_d: float | None = None) -> np.ndarray:
        """``key`` on each seed: of the uniform runs (``lam_d=None``) or of SMOL at ``lam_d``."""
        rows = self.uniform if lam_d is None else self.smol[lam_d]
        return np.array([float(r[key]) for r in rows])

    def bpp_steps(self) -> np.ndarray:
        """Per seed (columns), the bpp lost from each ``lambda * d`` to the next larger one (rows)."""
        b = np.array([self.per_seed("bpp", ld) for ld in self.lam_d])
        return b[:-1] - b[1:]

    def zpa_savings(self) -> dict[float, float]:
        """Bits per parameter ZPA saves, per ``lambda * d``."""
        return {ld: self.mean("bpp", ld) - self.mean("bpp_zpa", ld) for ld in self.lam_d}

    def zpa_error_change(self) -> dict[float, float]:
        """Test error after fine-tuning with ZPA minus without (points; negative: ZPA helps)."""
        return {ld: 100 * (self.mean("err_zpa_after", ld) - self.mean("err_after", ld)) for ld in self.lam_d}

    def zpa_never_up(self) -> bool:
        """Whether ZPA left every trained weight's quantization error as it was or lower, in every run."""
        return all(r["zpa_error_never_up"] for rs in self.smol.values() for r in rs)

    def shuffle_gaps(self) -> np.ndarray:
        """Shuffled minus learned precisions, error before fine-tuning (points); rows ``lambda * d``, columns seeds."""
        return np.array([[100 * (r["err_shuffled_before"] - r["err_before"]) for r in self.smol[ld]]
                         for ld in self.lam_d])

    def shuffle_loss_gaps(self) -> np.ndarray:
        """Shuffled minus learned precisions, training loss before fine-tuning."""
        return np.array([[r["train_loss_shuffled_before"] - r["train_loss_before"] for r in self.smol[ld]]
                         for ld in self.lam_d])

    def layer_margins(self) -> np.ndarray:
        """Per ``lambda * d`` (rows): the seed-mean bits of the first and of the last layer minus those of the middle
        one (columns), from :meth:`layer_means`."""
        names = list(self.smol[self.lam_d[0]][0]["precisions"])
        first, middle, last = names[0], names[len(names) // 2], names[-1]
        means = self.layer_means()
        return np.array([[means[ld][first] - means[ld][middle], means[ld][last] - means[ld][middle]]
                         for ld in self.lam_d])

    def layer_means(self) -> dict[float, dict[str, float]]:
        """Mean learned precision of each layer (bits), averaged over seeds, per ``lambda * d``."""
        names = list(self.smol[self.lam_d[0]][0]["precisions"])
        return {ld: {n: float(np.mean([r["precisions"][n].float().mean() for r in self.smol[ld]])) for n in names}
                for ld in self.lam_d}

    def rows(self) -> list[dict]:
        """The section-4 table: bpp and test error (%) before and after fine-tuning of every method."""
        def row(name: str, bpp: float, before: float, after: float | None) -> dict:
            return {"run": name, "bpp": bpp, "test err before FT %": 100 * before,
                    "test err after FT %": None if after is None else 100 * after}

        out = [row("full precision", 32.0, self.mean("err_fp_before"), self.mean("err_fp"))]
        out += [row(f"uniform {k}-bit", float(k), self.mean(f"err_u{k}_before"), self.mean(f"err_u{k}_after"))
                for k in self.uniform_bits]
        for ld in self.lam_d:
            m = {key: self.mean(key, ld) for key in ("bpp", "bpp_zpa", "err_before", "err_after", "err_zpa_before",
                                                     "err_zpa_after", "err_shuffled_before")}
            out += [row(f"SMOL λd = {ld:g}", m["bpp"], m["err_before"], m["err_after"]),
                    row(f"SMOL* (ZPA) λd = {ld:g}", m["bpp_zpa"], m["err_zpa_before"], m["err_zpa_after"]),
                    row(f"shuffled precisions λd = {ld:g}", m["bpp"], m["err_shuffled_before"], None)]
        return out


def compare_with_uniform(cfg: Mapping[str, Any], data: Split, seeds: Sequence[int],
                         device: str | torch.device = "cpu", augment: Augment = None, progress: bool = True) -> Sweep:
    """Section 4: per seed in ``seeds``, the uniform baselines (:func:`uniform_pipeline`, ``cfg["uniform_bits"]``)
    and SMOL with ZPA and the shuffle control (:func:`smol_pipeline`) at every ``cfg["lam_d"]``, all from the same
    initialization.

    ``lambda = lambda_d / d`` with ``d`` the number of quantized weights.
    """
    seeds = [int(s) for s in seeds]
    if not seeds or not list(cfg["lam_d"]):
        raise ValueError("seeds and cfg['lam_d'] must be non-empty")
    it = seeds
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(seeds, desc="seeds")
    uniform, results = [], {ld: [] for ld in cfg["lam_d"]}
    for seed in it:
        gen = torch.Generator().manual_seed(seed)  # one batch order per seed, continued from run to run
        uniform.append(uniform_run(cfg, data, seed, device, augment, gen))
        for ld in cfg["lam_d"]:
            results[ld].append(smol_run(cfg, data, ld, seed, device, augment, gen))
    return Sweep(list(cfg["lam_d"]), seeds, list(cfg["uniform_bits"]), uniform, results)


def uniform_run(cfg: Mapping[str, Any], data: Split, seed: int, device: str | torch.device = "cpu",
                augment: Augment = None, generator: torch.Generator | None = None,
                checkpoint: Checkpoints | None = None) -> dict:
    """The uniform baselines of one seed in section 4 (:func:`uniform_pipeline` at ``cfg["uniform_bits"]``, Table
    5.1's network-granularity rows), from the initialization of ``seed``; minibatches from ``generator``."""
    model = make_model(cfg, data, seed, device)
    return uniform_pipeline(model, data, cfg["uniform_bits"], weights=quantized_names(model), augment=augment,
                            generator=generator, **_budget(cfg), checkpoint=checkpoint)


def smol_run(cfg: Mapping[str, Any], data: Split, lam_d: float, seed: int, device: str | torch.device = "cpu",
             augment: Augment = None, generator: torch.Generator | None = None,
             checkpoint: Checkpoints | None = None) -> dict:
    """One SMOL run of section 4 (:func:`smol_pipeline` with ZPA and the shuffle control, Table 5.1's SMOL and
    SMOL* rows) at ``lambda = lam_d / d``, from the initialization of ``seed``; minibatches from ``generator``."""
    model = make_model(cfg, data, seed, device)
    return smol_pipeline(model, data, lam_d / count_quantized(model), weights=quantized_names(model),
                         augment=augment, generator=generator, **_smol_options(cfg), **_budget(cfg),
                         checkpoint=checkpoint)


# ------------------------------------------------------------------------------------ section 5: where bits go
def _pair(a: float, b: float) -> str:
    return f"{100 * a:.1f} / {100 * b:.1f}"


def layerwise_comparison(cfg: Mapping[str, Any], data: Split, seed: int, device: str | torch.device = "cpu",
                         augment: Augment = None) -> list[dict]:
    """SMOL-L (one precision per layer) at each ``cfg["layer_lam_d"]`` against :func:`sensitivity_allocation` at the
    same average bits, applied to the full-precision network of the uniform baseline; both fine-tuned alike.
    Rows carry ``err_after`` and ``sensitivity_err_after`` (in [0, 1]) besides the :data:`LAYER_COLUMNS`."""
    return [layerwise_row(cfg, data, ld, seed, device, augment) for ld in cfg["layer_lam_d"]]


def layerwise_row(cfg: Mapping[str, Any], data: Split, lam_d: float, seed: int, device: str | torch.device = "cpu",
                  augment: Augment = None, checkpoint: Checkpoints | None = None) -> dict:
    """One row of :func:`layerwise_comparison` (Table 5.1's SMOL-L row against a sensitivity allocation) at
    ``lambda * d = lam_d``.  ``checkpoint`` (a sweep's ``ctx.fit_checkpoint``) checkpoints every phase: SMOL-L's
    ``"smol-l-*"``, the full-precision baseline's ``"base-*"`` and the allocation's ``"sensitivity-finetune"``."""
    ckpt = _phases(checkpoint)
    smol_l_ckpt = None if checkpoint is None else (lambda n: ckpt(f"smol-l-{n}"))
    base_ckpt = None if checkpoint is None else (lambda n: ckpt(f"base-{n}"))
    x, y = data.x_train[:cfg["sens_samples"]], data.y_train[:cfg["sens_samples"]]
    gen = torch.Generator().manual_seed(seed)
    model = make_model(cfg, data, seed, device)
    r = smol_pipeline(model, data, lam_d / count_quantized(model), granularity="layer", zpa=False, shuffle=False,
                      weights=quantized_names(model), augment=augment, generator=gen, **_smol_options(cfg),
                      **_budget(cfg), checkpoint=smol_l_ckpt)
    gen = torch.Generator().manual_seed(seed)
    base = make_model(cfg, data, seed, device)
    usmol = uniform_pipeline(base, data, [], weights=quantized_names(base), augment=augment, generator=gen,
                             **_budget(cfg), checkpoint=base_ckpt)["smol"]
    sens = sensitivity_allocation(usmol, x, y, budget_bpp=max(r["bpp"], 1.0))
    sens_bpp, sens_before = usmol.bits_per_parameter(), eval_error(base, data)
    sens_after = finetune(base, usmol.model_parameters(), data, cfg["finetune_epochs"], cfg["batch_size"],
                          lr=cfg["lr_ft"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"],
                          milestones=cfg["ft_milestones"], augment=augment, generator=gen,
                          checkpoint=ckpt("sensitivity-finetune"))
    return {"λd": lam_d, "SMOL-L bits per layer": str([int(p.flatten()[0]) for p in r["precisions"].values()]),
            "bpp": r["bpp"], "err before / after %": _pair(r["err_before"], r["err_after"]),
            "sensitivity bits per layer": str(list(sens.values())), "sensitivity bpp": sens_bpp,
            "sensitivity err before / after %": _pair(sens_before, sens_after),
            "err_after": r["err_after"], "sensitivity_err_after": sens_after}


def cnn_comparison(cfg: Mapping[str, Any], images: Split, seeds: Sequence[int],
                   device: str | torch.device = "cpu") -> list[dict]:
    """SMOL (with ZPA) on the small CNN at each ``cfg["cnn_lam_d"]`` and seed in ``seeds``, against uniform 2-bit
    and full precision, with the CNN's own epochs ``cfg["cnn_epochs"]`` and learning rates ``cfg["cnn_lr"]``."""
    budget = dict(precision_epochs=cfg["cnn_epochs"][0], finetune_epochs=cfg["cnn_epochs"][1],
                  batch_size=cfg["batch_size"], lr_w=cfg["cnn_lr"][0], lr_ft=cfg["cnn_lr"][1],
                  momentum=cfg["momentum"])
    rows = []
    for seed in seeds:
        gen = torch.Generator().manual_seed(seed)
        u = uniform_pipeline(make_cnn(cfg, seed, device), images, [2], generator=gen, **budget)
        for ld in cfg["cnn_lam_d"]:
            cnn = make_cnn(cfg, seed, device)
            r = smol_pipeline(cnn, images, ld / count_quantized(cnn), shuffle=False, generator=gen,
                              **_smol_options(cfg), **budget)
            rows.append({"seed": seed, "λd": ld, "bpp": r["bpp"],
                         "SMOL err before / after %": _pair(r["err_before"], r["err_after"]),
                         "SMOL* bpp": r["bpp_zpa"], "SMOL* err after %": 100 * r["err_zpa_after"],
                         "uniform 2-bit before / after %": _pair(u["err_u2_before"], u["err_u2_after"]),
                         "FP %": 100 * u["err_fp"]})
    return rows


def budget_split(cfg: Mapping[str, Any], data: Split, lam_d: float, seed: int, device: str | torch.device = "cpu",
                 augment: Augment = None) -> list[dict]:
    """Fig. 5.7's question: a fixed total of ``cfg["split_total"]`` epochs, a fraction ``cfg["split_fracs"]`` of it
    precision training and the rest fine-tuning.  Rows: ``precision_epochs``, ``bpp``, ``err_after``."""
    return [budget_split_row(cfg, data, lam_d, t1, seed, device, augment) for t1 in split_epochs(cfg)]


def split_epochs(cfg: Mapping[str, Any]) -> list[int]:
    """The precision-training epochs of :func:`budget_split`: ``round(frac * cfg["split_total"])`` (at least 1) for
    each ``frac`` in ``cfg["split_fracs"]``."""
    total, out = cfg["split_total"], []
    for frac in cfg["split_fracs"]:
        t1 = max(1, int(round(frac * total)))
        if not 0 <= frac <= 1 or t1 > total:
            raise ValueError(f"cfg['split_fracs'] must lie in [0, 1]; got {frac!r}")
        out.append(t1)
    return out


def budget_split_row(cfg: Mapping[str, Any], data: Split, lam_d: float, precision_epochs: int, seed: int,
                     device: str | torch.device = "cpu", augment: Augment = None,
                     checkpoint: Checkpoints | None = None) -> dict:
    """One point of Fig. 5.7: SMOL at ``lambda * d = lam_d`` with ``precision_epochs`` of precision training and
    ``cfg["split_total"] - precision_epochs`` of fine-tuning (``checkpoint`` as in :func:`smol_pipeline`)."""
    total = cfg["split_total"]
    if not isinstance(precision_epochs, int) or not 1 <= precision_epochs <= total:
        raise ValueError(f"precision_epochs must be an int in [1, cfg['split_total'] = {total}]; "
                         f"got {precision_epochs!r}")
    gen = torch.Generator().manual_seed(seed)
    model = make_model(cfg, data, seed, device)
    budget = {**_budget(cfg), "precision_epochs": precision_epochs, "finetune_epochs": total - precision_epochs}
    r = smol_pipeline(model, data, lam_d / count_quantized(model), zpa=False, shuffle=False,
                      weights=quantized_names(model), augment=augment, generator=gen, **_smol_options(cfg),
                      **budget, checkpoint=checkpoint)
    return {"precision_epochs": precision_epochs, "bpp": r["bpp"], "err_after": r["err_after"]}


def activation_comparison(cfg: Mapping[str, Any], data: Split, seed: int,
                          device: str | torch.device = "cpu") -> list[dict]:
    """SMOL-A on the MLP's ReLUs (weights in full precision) for ``cfg["act_epochs"][0]`` epochs, then the learned
    precisions and PACT at a uniform 2 and 3 bits, each from the same trained network and fine-tuned alike for
    ``cfg["act_epochs"][1]`` epochs.  No rows when ``cfg["act_epochs"][0]`` is 0.  Rows carry ``err_after`` (in
    [0, 1]) besides the :data:`ACTIVATION_COLUMNS`."""
    if cfg["act_epochs"][0] <= 0:
        return []
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = make_model(cfg, data, seed, device)
    acts = add_activation_smol(model, data.x_train[:8])
    smol = SMOL(model).set_mode("fp")
    w_opt = torch.optim.SGD(smol.model_parameters(), lr=cfg["lr_w"], momentum=cfg["momentum"])
    a_opt = torch.optim.Adam([a.s for a in acts], lr=cfg["lr_s"])
    precision_training(model, None, data, cfg["act_epochs"][0], cfg["batch_size"], w_opt, a_opt, lam=0.0,
                       activations=acts, lam_act=cfg["act_lam"] / sum(a.s.numel() for a in acts), generator=gen)
    smol.set_mode("fp")
    trained = smol.state()
    rows = []
    for label, bits in [("SMOL-A", None), ("PACT 2-bit", 2), ("PACT 3-bit", 3)]:
        smol.load_state(trained)
        for a in acts:
            if bits is None:
                a.allocate()
            else:
                a.set_precision(bits)
        bpa = float(torch.cat([a.precision.flatten() for a in acts]).float().mean())
        before = eval_error(model, data)
        after = finetune(model, smol.model_parameters(), data, cfg["act_epochs"][1], cfg["batch_size"],
                         lr=cfg["lr_ft"], momentum=cfg["momentum"], generator=gen)
        rows.append({"activations": label, "bits per activation": bpa, "err before / after FT %": _pair(before, after),
                     "err_after": after})
    return rows


# ---------------------------------------------------------------------------------------- section 6: the cost
def cost_rows(model: nn.Module, x: torch.Tensor, precisions: Mapping[str, torch.Tensor], uniform_bits: int = 2,
              activation_bits: float = 8.0) -> list[dict]:
    """Per layer and in total: stored bits and bit-operations per input (:func:`~effcourse.smol.fixed_point.bops`)
    of ``precisions`` (keyed by weight name, ``"<module>.weight"``) against ``uniform_bits`` everywhere."""
    per_module = {n.rsplit(".", 1)[0]: p for n, p in precisions.items()}
    smol = bops(model, x, per_module, activation_bits=activation_bits)
    uni = bops(model, x, {n: torch.tensor(uniform_bits) for n in per_module}, activation_bits=activation_bits)
    rows = []
    for n, p in per_module.items():
        rows.append({"layer": n, "weights": p.numel(), "SMOL bits": model_bits([p]),
                     f"uniform {uniform_bits}-bit bits": uniform_bits * p.numel(), "SMOL kBOPs": smol[n] / 1e3,
                     f"uniform {uniform_bits}-bit kBOPs": uni[n] / 1e3})
    total = {k: sum(r[k] for r in rows) for k in rows[0] if k != "layer"}
    return rows + [{"layer": "all", **total}]
