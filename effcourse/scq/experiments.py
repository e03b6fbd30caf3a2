"""The experiments of chapter 04-scq (Gautam 2024, chapter 5), so that the notebook only calls and narrates.

* :func:`hull_check`: exact SCQ (Alg. 8) on points inside the codes' convex hull, against VQ (section 5.3).
* :func:`compare_solvers`: how far Algorithm 9 (ridge solve + simplex projection) lands from (5.8).
* :func:`train_one`, :func:`train_methods`, :func:`train_init_study`: the autoencoders of Table 5.1 (and the
  codebook-initialization and SimVQ study), seeded exactly as the chapter's claims need.
* ``*_rows``: the rows of the chapter's tables (for ``run.table``), formatted from those results.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from ..core.config import Config
from ..core.data import Split
from .autoencoder import AutoencoderHistory, VQAutoencoder, evaluate_autoencoder, train_autoencoder
from .codebook import INITS, nearest_code
from .quantizers import KINDS, make_quantizer
from .simplex import project_simplex, project_simplex_alternating
from .solvers import scq_exact, scq_objective, scq_ridge

__all__ = [
    "METHOD_NAMES",
    "THESIS_TABLE_5_1",
    "compare_solvers",
    "hull_check",
    "init_rows",
    "per_seed_rows",
    "reproduction_rows",
    "simvq_rows",
    "summarize",
    "table51_rows",
    "train_init_study",
    "train_methods",
    "train_one",
]

METHOD_NAMES = {"ae": "AE (no quantizer)", "vq": "VQ", "vq_rep": "VQ + replacement", "scq": "SCQ",
                "scq_alg9": "SCQ, Alg. 9 as printed", "scq_exact": "SCQ, Alg. 8 (exact)", "simvq": "SimVQ"}

# Table 5.1, CIFAR-10 column: reconstruction MSE (1e-3), quantization error, perplexity, quantizer time (ms).
THESIS_TABLE_5_1 = {"ae": ("0.44", "—", "—", "—"), "vq": ("41.19", "70.47", "6.62", "4.45"),
                    "vq_rep": ("5.49", "4.13e-3", "106.07", "5.56"), "scq": ("1.53", "0.15e-3", "124.11", "7.42")}

Results = Mapping[tuple[str, int], "dict[str, float] | None"]


# ------------------------------------------------------------------------------------------------ sections 2-3
def hull_check(codes: torch.Tensor, z: torch.Tensor, lams: Sequence[float]
               ) -> tuple[list[dict[str, float | bool]], torch.Tensor]:
    """Exact SCQ (Alg. 8, cvxpylayers) on rows ``z`` at every ``lam``: per ``lam`` the largest quantization error
    ``max_error``, whether no point is quantized worse than by VQ (``never_worse``) and ``max_dev``, the largest
    ``|P* - P~|``; also VQ's per-point error.  With ``z`` inside the hull of ``codes`` the error vanishes as
    ``lam -> 0`` (section 5.3's convex-hull property)."""
    if not lams:
        raise ValueError("lams must name at least one lambda of (5.8)")
    vq_err = (z - codes[nearest_code(z, codes)]).norm(dim=1)
    rows = []
    for lam in lams:
        p_ex, p_vq = scq_exact(z, codes, lam)
        err = (z - p_ex @ codes).norm(dim=1)
        rows.append({"lambda": lam, "max_error": float(err.max()), "never_worse": bool((err <= vq_err + 1e-7).all()),
                     "max_dev": float((p_ex - p_vq).abs().max())})
    return rows, vq_err


def compare_solvers(sizes: Sequence[tuple[int, int]], columns: int, lam: float, alternating_steps: Sequence[int]
                    ) -> tuple[list[dict[str, object]], dict[tuple[int, str], float]]:
    """Solvers of (5.8) on random instances (``z`` and codes from N(0, 1), ``columns`` rows, float64) for each
    ``(F, K)`` in ``sizes``: VQ's one-hot weights, the exact solve (Alg. 8), the ridge solution with the exact
    simplex projection, and with ``m`` alternating projections (Alg. 9) for each ``m`` in ``alternating_steps``.

    Returns one table row per (size, solver) and ``{(K, solver): objective / exact objective}``.
    """
    if not sizes:
        raise ValueError("sizes must name at least one (F, K) pair")
    rows, ratio = [], {}
    for f_dim, k in sizes:
        gl = torch.Generator().manual_seed(10 + k)
        z = torch.randn(columns, f_dim, generator=gl, dtype=torch.float64)
        c = torch.randn(k, f_dim, generator=gl, dtype=torch.float64)
        t0 = time.perf_counter()
        p_star, p_vq = scq_exact(z, c, lam)
        t_exact = time.perf_counter() - t0
        cands = {"VQ (one-hot)": (p_vq, 0.0), "exact (5.8), cvxpylayers": (p_star, t_exact)}
        t0 = time.perf_counter()
        cands["ridge + exact projection"] = (project_simplex(scq_ridge(z, c, p_vq, lam)), time.perf_counter() - t0)
        for m in alternating_steps:
            t0 = time.perf_counter()
            cands[f"ridge + alternating, m={m}"] = (project_simplex_alternating(scq_ridge(z, c, p_vq, lam), m),
                                                    time.perf_counter() - t0)
        obj_star = float(scq_objective(z, c, p_star, p_vq, lam).mean())
        for name, (p, t) in cands.items():
            obj = float(scq_objective(z, c, p, p_vq, lam).mean())
            ratio[(k, name)] = obj / obj_star
            rows.append({"size": f"F={f_dim}, K={k}", "solver": name, "objective (5.8)": obj,
                         "/ exact": obj / obj_star,
                         "rel. distance to $P^\\star$": float((p - p_star).norm() / p_star.norm()),
                         "columns with $p<0$": float((p < -1e-9).any(1).double().mean()), "min entry": float(p.min()),
                         "quant. error $\\Vert z-Cp\\Vert^2$": float(((z - p @ c) ** 2).sum(1).mean()), "ms": 1e3 * t})
    return rows, ratio


SOLVER_TABLE_FORMAT = {"objective (5.8)": ".2f", "/ exact": ".2f", "rel. distance to $P^\\star$": ".2f",
                       "columns with $p<0$": lambda v: f"{100 * v:.0f}%", "min entry": "+.3f",
                       "quant. error $\\Vert z-Cp\\Vert^2$": ".2f", "ms": ".1f"}


# ------------------------------------------------------------------------------------------------ autoencoders
def _check_kind(kind: str) -> None:
    if kind != "ae" and kind not in KINDS:
        raise ValueError(f"kind must be 'ae' (no quantizer) or one of {KINDS}; got {kind!r}")


def build_autoencoder(cfg: Config, kind: str, init: str = "uniform", device: str | torch.device = "cpu"
                      ) -> VQAutoencoder:
    """The chapter's autoencoder (Table 5.3's architecture at ``cfg``'s sizes) with quantizer ``kind`` (``"ae"``:
    none), its codebook drawn from torch's global RNG with ``init``."""
    _check_kind(kind)
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}; got {init!r}")
    q = None if kind == "ae" else make_quantizer(kind, cfg.num_codes, cfg.code_dim, cfg.beta, cfg.lam,
                                                 cfg.alg9_steps, init, device=device)
    return VQAutoencoder(q, cfg.image_channels, cfg.channels, cfg.res_channels, cfg.res_blocks, cfg.code_dim,
                         cfg.downsamples, device=device)


def train_one(cfg: Config, data: Split, kind: str, seed: int, init: str = "uniform",
              device: str | torch.device = "cpu", progress: bool = True
              ) -> tuple[VQAutoencoder, AutoencoderHistory, dict[str, float] | None]:
    """One autoencoder with quantizer ``kind`` from ``seed`` (weights and minibatch order), trained for
    ``cfg.steps`` steps on ``data``'s images; returns ``(model, history, test metrics)``, the metrics ``None`` if
    training diverged."""
    torch.manual_seed(seed)
    model = build_autoencoder(cfg, kind, init, device)
    hist = train_autoencoder(model, data.x_train, data.x_test, cfg.steps, cfg.batch_size, cfg.lr,
                             torch.Generator().manual_seed(seed), cfg.eval_every,
                             progress=f"{kind} seed {seed}" if progress else False)
    return model, hist, (evaluate_autoencoder(model, data.x_test) if not hist.diverged else None)


def train_methods(cfg: Config, data: Split, device: str | torch.device = "cpu", progress: bool = True):
    """Every method of ``cfg.methods`` on every seed of ``cfg.seeds`` (the reference ``"ae"`` on the first only),
    codebooks from U(-1/K, 1/K).  Returns ``(results, models, hists)``, dicts keyed by ``(kind, seed)``."""
    results, models, hists = {}, {}, {}
    for seed in cfg.seeds:
        for kind in cfg.methods:
            if kind == "ae" and seed != cfg.seeds[0]:
                continue  # the reference needs one seed
            models[kind, seed], hists[kind, seed], results[kind, seed] = train_one(cfg, data, kind, seed,
                                                                                   device=device, progress=progress)
    return results, models, hists


def train_init_study(cfg: Config, data: Split, device: str | torch.device = "cpu", progress: bool = True
                     ) -> dict[tuple[str, int], dict[str, float] | None]:
    """``cfg.init_methods`` with N(0, 1) codebooks: VQ and SimVQ on every seed of ``cfg.init_seeds`` (section 6's
    claim), the others on the first.  Returns the test metrics keyed by ``(kind, seed)``."""
    init_res = {}
    for seed in cfg.init_seeds:
        for kind in cfg.init_methods:
            if kind not in ("vq", "simvq") and seed != cfg.init_seeds[0]:
                continue
            _, _, init_res[kind, seed] = train_one(cfg, data, kind, seed, init="normal", device=device,
                                                   progress=progress)
    return init_res


def summarize(results: Results, keys: Sequence[tuple[str, int]]) -> dict[str, tuple[float, float]] | None:
    """Mean and std over the runs in ``keys`` that did not diverge, metric by metric (``None`` if none)."""
    rs = [results[k] for k in keys if results.get(k) is not None]
    return {m: (np.mean([r[m] for r in rs]), np.std([r[m] for r in rs])) for m in rs[0]} if rs else None


# ------------------------------------------------------------------------------------------------ table rows
def table51_rows(cfg: Config, results: Results) -> list[dict[str, str]]:
    """The analogue of Table 5.1: mean ± std over ``cfg.seeds`` per method, next to the thesis's CIFAR-10 row."""
    rows = []
    for kind in cfg.methods:
        s = summarize(results, [(kind, sd) for sd in cfg.seeds])
        th = " / ".join(THESIS_TABLE_5_1[kind]) if kind in THESIS_TABLE_5_1 else ""
        row = {"method": METHOD_NAMES[kind], "recon MSE (1e-3)": f"{1e3 * s['recon_mse'][0]:.2f}"}
        if kind == "ae":
            row.update({c: "—" for c in ("quant error (1e-3)", "perplexity hard / soft", "codes used", "nonzeros",
                                         "quantizer ms")})
        else:
            row["recon MSE (1e-3)"] += f" ± {1e3 * s['recon_mse'][1]:.2f}"
            row.update({"quant error (1e-3)": f"{1e3 * s['quant_error'][0]:.2f} ± {1e3 * s['quant_error'][1]:.2f}",
                        "perplexity hard / soft": f"{s['perplexity_hard'][0]:.1f} / {s['perplexity_soft'][0]:.1f}",
                        "codes used": f"{s['codes_used'][0]:.0f}", "nonzeros": f"{s['nonzeros'][0]:.1f}",
                        "quantizer ms": f"{s['quant_ms'][0]:.1f}"})
        row["thesis, CIFAR-10: MSE (1e-3), quant error, perplexity, ms"] = th
        rows.append(row)
    return rows


def per_seed_rows(cfg: Config, results: Results) -> list[dict[str, object]]:
    """One row per (seed, quantizer): recon MSE and quantization error (1e-3), hard perplexity."""
    return [{"seed": sd, "method": METHOD_NAMES[k], "recon MSE (1e-3)": 1e3 * results[k, sd]["recon_mse"],
             "quant error (1e-3)": 1e3 * results[k, sd]["quant_error"],
             "perplexity (hard)": results[k, sd]["perplexity_hard"]}
            for sd in cfg.seeds for k in cfg.methods if k != "ae"]


PER_SEED_FORMAT = {"recon MSE (1e-3)": ".2f", "quant error (1e-3)": ".2f", "perplexity (hard)": ".0f"}


def init_rows(cfg: Config, results: Results, init_res: Results) -> list[dict[str, object]]:
    """Each of ``cfg.init_methods`` with U(-1/K, 1/K) and N(0, 1) codebooks, on the first init seed."""
    s0, rows = cfg.init_seeds[0], []
    for kind in cfg.init_methods:
        for init_name, rr in (("U(-1/K, 1/K)", results.get((kind, s0))), ("N(0, 1)", init_res.get((kind, s0)))):
            if rr is None:
                continue
            rows.append({"method": METHOD_NAMES[kind], "codebook init": init_name,
                         "recon MSE (1e-3)": 1e3 * rr["recon_mse"], "quant error (1e-3)": 1e3 * rr["quant_error"],
                         "perplexity hard / soft": f"{rr['perplexity_hard']:.1f} / {rr['perplexity_soft']:.1f}",
                         "codes used": f"{rr['codes_used']:.0f}"})
    return rows


INIT_FORMAT = {"recon MSE (1e-3)": ".2f", "quant error (1e-3)": ".2f"}


def simvq_rows(cfg: Config, init_res: Results) -> list[dict[str, object]]:
    """VQ against SimVQ with N(0, 1) codebooks, per seed of ``cfg.init_seeds``: codes used and recon MSE."""
    return [{"seed": sd, "VQ, N(0,1): codes used": f"{init_res['vq', sd]['codes_used']:.0f} / {cfg.num_codes}",
             "SimVQ: codes used": f"{init_res['simvq', sd]['codes_used']:.0f} / {cfg.num_codes}",
             "VQ recon MSE (1e-3)": 1e3 * init_res["vq", sd]["recon_mse"],
             "SimVQ recon MSE (1e-3)": 1e3 * init_res["simvq", sd]["recon_mse"]} for sd in cfg.init_seeds]


SIMVQ_FORMAT = {"VQ recon MSE (1e-3)": ".2f", "SimVQ recon MSE (1e-3)": ".2f"}


def reproduction_rows(cfg: Config, results: Results, init_res: Results,
                      alg9: tuple[AutoencoderHistory, dict[str, float] | None] | None,
                      hull_error: float) -> list[dict[str, str]]:
    """The thesis's claims (Table 5.1, CIFAR-10), next to this chapter's numbers: seeds ``cfg.seeds`` with
    U(-1/K, 1/K) codebooks, the first init seed with N(0, 1), Algorithm 9's run ``alg9`` and the convex-hull
    error ``hull_error`` at the thesis's lambda."""
    s_vq, s_scq, s_rep = (summarize(results, [(k, sd) for sd in cfg.seeds]) for k in ("vq", "scq", "vq_rep"))
    s0 = cfg.init_seeds[0]
    alg9_text = (f"diverged at step {alg9[0].diverged_at}" if alg9 and alg9[0].diverged
                 else ("trained: MSE {:.2e}".format(alg9[1]["recon_mse"]) if alg9 else "not run"))

    def mse(s):
        return f"{1e3 * s['recon_mse'][0]:.2f}e-3"

    return [
        {"thesis claim": "SCQ has higher perplexity than VQ", "thesis": "124.11 vs 6.62",
         "this book": f"hard {s_scq['perplexity_hard'][0]:.1f} vs {s_vq['perplexity_hard'][0]:.1f}; soft "
                      f"{s_scq['perplexity_soft'][0]:.1f} vs {s_vq['perplexity_soft'][0]:.1f}"},
        {"thesis claim": "SCQ's quantization error is orders of magnitude below VQ's",
         "thesis": "0.15e-3 vs 70.47 (5 orders)",
         "this book": f"{1e3 * s_scq['quant_error'][0]:.2f}e-3 vs {1e3 * s_vq['quant_error'][0]:.2f}e-3 "
                      f"({s_vq['quant_error'][0] / s_scq['quant_error'][0]:.0f}x)"},
        {"thesis claim": "SCQ reconstructs an order of magnitude better", "thesis": "1.53e-3 vs 41.19e-3 (27x)",
         "this book": f"{mse(s_scq)} vs {mse(s_vq)} ({s_vq['recon_mse'][0] / s_scq['recon_mse'][0]:.1f}x, "
                      "U(-1/K,1/K) init only)"},
        {"thesis claim": "replacement improves VQ's reconstruction", "thesis": "5.49e-3 vs 41.19e-3",
         "this book": f"{mse(s_rep)} vs {mse(s_vq)} with U(-1/K,1/K) codes (with N(0,1) codes: "
                      f"{1e3 * init_res['vq_rep', s0]['recon_mse']:.2f}e-3 vs "
                      f"{1e3 * init_res['vq', s0]['recon_mse']:.2f}e-3, seed {s0})"},
        {"thesis claim": "Alg. 9 (m=20) trains SCQ", "thesis": "Table 5.1", "this book": alg9_text},
        {"thesis claim": "exact convex-hull reconstruction", "thesis": "any $\\lambda$",
         "this book": f"only as $\\lambda\\to0$: max error {hull_error:.2f} at $\\lambda=0.1$"},
        {"thesis claim": "SCQ quantizes at a cost comparable to VQ", "thesis": "7.42 vs 4.45 ms (1.7x, GPU)",
         "this book": f"{s_scq['quant_ms'][0]:.0f} vs {s_vq['quant_ms'][0]:.0f} ms "
                      f"({s_scq['quant_ms'][0] / s_vq['quant_ms'][0]:.0f}x, CPU, forward on the test set; "
                      "`bench_scq.py` times forward + backward)"},
    ]
