# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Soft convex quantization: a convex program instead of the nearest code
#
# A vector-quantized autoencoder squeezes every latent vector through a finite codebook: the encoder proposes a
# vector, the quantizer replaces it by the nearest code, the decoder reconstructs from the codes. This discrete
# bottleneck is what lets a second model (autoregressive or diffusion) generate in the latent space, and it is also
# where most of the training trouble sits. Chapter 5 of {cite}`gautam2024thesis` proposes to replace the nearest-code
# lookup by a small convex program, **soft convex quantization** (SCQ): represent each latent vector by the *convex
# combination* of codes that reconstructs it best, close to the one-hot VQ answer, and differentiate through the
# optimality conditions of that program.
#
# This chapter builds the method from its equations and tests it:
#
# 1. Vector quantization, its straight-through gradient and its loss (5.1-5.5), and what goes wrong with it.
# 2. SCQ as a differentiable convex optimization layer: problem (5.8), its guarantees, and the convex-hull property
#    checked numerically.
# 3. The scalable relaxation (Algorithm 9): what it computes, how far it lands from the solution of (5.8), and an
#    exact Euclidean simplex projection next to the thesis's alternating one.
# 4. Autoencoders on 8x8 digits with VQ, VQ with dead-code replacement and SCQ, over several seeds: the analogue of
#    the thesis's Table 5.1.
# 5. Codebook initialization, which the thesis does not specify and which changes every result.
# 6. Beyond the thesis: SimVQ, a linear reparameterization of a frozen codebook, where plain VQ collapses.

# %% tags=["remove-cell"]
# effcourse setup: on Colab, Binder or a copy of this notebook, install the book's effcourse if it is missing.
# EFFCOURSE_INSTALL replaces what is installed: a local checkout, a wheel or any pip requirement.
import importlib.util

if importlib.util.find_spec("effcourse") is None:
    import os
    import subprocess
    import sys

    _requirement = os.environ.get("EFFCOURSE_INSTALL") or "effcourse @ git+https://github.com/effcourse/effcourse@v0.1.0"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", _requirement], check=True)
    importlib.invalidate_caches()

# %% tags=["parameters"]
import os

SCALE = os.environ.get("EFFCOURSE_SCALE", "book")  # "smoke" | "book" | "full"
SEED = 0
DEVICE = "auto"

# %% [markdown]
# ## Set-up
#
# Everything the chapter computes lives in `effcourse.scq`: codebooks and usage in `codebook`, the simplex
# projections in `simplex`, the convex program (5.8) and its solvers in `solvers`, the quantization layers in
# `quantizers`, the autoencoder and its training loop in `autoencoder`; `experiments` and `figures` hold the drivers
# of this page. The configuration fixes the scale; the data set comes from one factory, pixels in $[0, 1]$ (8x8
# digits at the smoke and book scales, CIFAR-10 at the thesis's).

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

from effcourse import Run
from effcourse.core.data import dataset
from effcourse.scq import experiments as ex
from effcourse.scq import sweep as scq_sweep
from effcourse.scq.figures import plot_quantization_error, plot_reconstructions, plot_test_curves
from effcourse.scq.simplex import project_simplex
from effcourse.scq.solvers import scq_exact, scq_projected_gradient

run = Run("04-scq", scale=SCALE, seed=SEED, device=DEVICE)
cfg = run.cfg
dev = run.device
data = dataset(cfg.dataset, normalize="unit", device=dev)
seeds = run.seeds(cfg.n_seeds)  # the training runs of section 4: 1000 * SEED + 0, 1, ...
init_seeds = run.seeds(cfg.n_init_seeds)  # sections 5-6 reuse the first of them (paired runs)
run

# %% [markdown]
# ## 1. Vector quantization and its three problems
#
# An encoder $E_\phi$ maps an image $x$ to latent vectors $z_e = E_\phi(x)$; a codebook $\mathcal{C} = \{c_j\}_{j=1}^K$
# of $K$ vectors in $\mathbb{R}^F$ replaces each of them by its nearest code,
#
# $$
# z_q = Q(z_e) = c_k, \qquad k = \arg\min_{1 \le j \le K} \|z_e - c_j\| ,
# \tag{5.1}
# $$
#
# and a decoder $D_\theta$ reconstructs $\hat x = D_\theta(z_q)$. The $\arg\min$ is piecewise constant, so its true
# derivative is zero almost everywhere. VQ-VAEs {cite}`oord2017vqvae` use the **straight-through estimator**: in the
# backward pass the quantizer is treated as the identity, $\partial z_q / \partial z_e := I$. The codebook, which then
# gets no gradient from the reconstruction, is trained by a separate term, and a *commitment* term keeps the encoder
# close to its codes. The thesis writes the loss as
#
# $$
# \mathcal{L}_{VQ} = \|x - \hat x\|_2^2 + (1-\beta)\,\|\mathrm{sg}[z_e] - z_q\|_2^2 + \beta\,\|z_e - \mathrm{sg}[z_q]\|_2^2 ,
# \tag{5.5}
# $$
#
# with $\mathrm{sg}$ the stop-gradient and $\beta = 0.25$. (The original VQ-VAE weights the two terms $1$ and $\beta$;
# we follow the thesis's $1-\beta$ and $\beta$, and use means instead of sums.) Three things go wrong:
#
# * **Straight-through bias.** The STE is exact only if $z_q = z_e$. The larger the residual $z_q - z_e$, the less the
#   gradient the decoder sends back has to do with the loss actually incurred.
# * **Codebook collapse.** Only the codes that win some $\arg\min$ receive the codebook term's gradient. Codes that
#   start far from the encoder outputs are never chosen, never move, and stay dead: the rich get richer.
# * **Lossy lookup.** Each latent vector is represented by exactly one code, so the quantization error is at least the
#   distance to the nearest code, however rich the codebook.
#
# `effcourse.scq.quantizers` implements VQ, and VQ with **dead-code replacement** (the "VQVAE + Rep" baseline of the
# thesis: every 100 steps, codes not chosen since the last check are reset to random encoder outputs), behind one
# interface: an `nn.Module` that takes $N \times F \times H \times W$ encoder outputs and returns the decoder's input,
# the quantizer's loss terms, and the $n \times K$ code weights ($n = NHW$) from which usage is measured.

# %% [markdown]
# ## 2. SCQ: the quantizer as a convex program
#
# Stack the $n$ latent vectors as the columns of $Z \in \mathbb{R}^{F \times n}$ and the codes as the columns of
# $C \in \mathbb{R}^{F\times K}$, and let $\widetilde P \in \{0,1\}^{K\times n}$ be VQ's one-hot assignment, computed
# with the same codebook and treated as a constant. SCQ solves
#
# $$
# P^\star = \arg\min_{P \in \mathbb{R}^{K\times n}} \ \|Z - CP\|_F^2 + \lambda \|P - \widetilde P\|_F^2
# \quad \text{s.t.} \quad P \ge 0, \quad \mathbf 1_K^\top P = \mathbf 1_n^\top ,
# \tag{5.8}
# $$
#
# and outputs $Z_q = CP^\star$: every latent vector becomes a convex combination of codes (Algorithm 8). Because
# $C$ and $Z$ enter a convex program, the layer is differentiable through the KKT conditions of (5.8), as in OptNet
# {cite}`amos2017optnet`; `cvxpylayers` {cite}`agrawal2019dcl` does both the solve and the differentiation. The
# decoder reads $Z_q$ itself, no straight-through estimator is needed, and every code with a nonzero weight gets a
# gradient. {doc}`../03-dco/dco` uses the same tool for another purpose: there the convex program is an optimizer's
# update step, differentiated with respect to the program's parameters to meta-learn the update rule; here it is a
# layer of the network, differentiated with respect to its inputs $Z$ and $C$.
#
# Four facts follow from the form of (5.8); we check the last three below (the first is how every solver here
# is batched).
#
# * **It separates over columns.** Objective and constraints are sums over the $n$ columns, so (5.8) is $n$ independent
#   QPs with $K$ variables each, sharing $C$: its cost grows linearly in $n$, not as $(nK)^3$ as the thesis states.
# * **VQ is the limit $\lambda\to\infty$**: the penalty forces $P^\star \to \widetilde P$.
# * **Exact SCQ never quantizes worse than VQ** (a guarantee the thesis does not state): $\widetilde P$ is feasible, so
#   $\|Z - CP^\star\|^2 + \lambda\|P^\star - \widetilde P\|^2 \le \|Z - C\widetilde P\|^2$.
# * **The convex-hull property holds only as $\lambda\to 0$.** The thesis says any $z$ inside the hull of the codes
#   is reconstructed exactly. That is true of the $\lambda = 0$ problem; for $\lambda > 0$ the pull towards the
#   one-hot $\widetilde P$ costs some reconstruction, but not much: if $z = Cw$ with $w$ on the simplex, $w$ is
#   feasible, so $\|z - Cp^\star\|^2 + \lambda\|p^\star - \tilde p\|^2 \le \lambda\|w - \tilde p\|^2$ and the
#   error is at most $\sqrt\lambda\,\|w - \tilde p\|$.
#
# First a picture in two dimensions: six codes, and for every point of a grid the quantization error of VQ and of
# SCQ at two values of $\lambda$ (solved to high accuracy by a batched projected-gradient solver,
# `scq_projected_gradient`, which we check against cvxpylayers below).

# %% mystnb={"image": {"alt": "Three heat maps of the quantization error over the plane for six codes (cyan dots), dark for zero and light for 1.5 or more. VQ is zero only at the codes and grows across each Voronoi cell; SCQ with lambda = 0.001 is zero on the whole convex hull of the codes and with lambda = 0.1 nearly so, and outside the hull the error grows with the distance to it."}, "figure": {"caption": "Quantization error in two dimensions for six codes: the nearest code (VQ) against soft convex quantization at $\\lambda = 0.1$ and $\\lambda = 0.001$.", "name": "fig-scq-quantization-error"}}
g2 = run.generator_for(offset=500)
codes2 = torch.randn(6, 2, generator=g2, dtype=torch.float64)
plot_quantization_error(codes2, lams=(0.1, 1e-3))
plt.show()

# %% [markdown]
# In {numref}`Figure %s <fig-scq-quantization-error>`, VQ's error is zero only at the codes and grows in every
# Voronoi cell. SCQ with a small $\lambda$ is exact on the
# whole convex hull of the codes (the dark polygon) and, outside it, its error is the distance to the hull. At the
# thesis's $\lambda = 0.1$ the hull is no longer exactly reproduced: the penalty pulls the weights towards the
# nearest code.
#
# Now the same facts with the exact layer (cvxpylayers, Algorithm 8) on points drawn inside the hull, at the
# $\lambda$ values of the configuration:

# %%
# NBVAL_CHECK_OUTPUT
w_in = project_simplex(torch.randn(40, 6, generator=g2, dtype=torch.float64) * 3)
z_in = w_in @ codes2  # 40 points inside the hull of the six codes
hull_rows, vq_err = ex.hull_check(codes2, z_in, cfg.hull_lams, weights=w_in)
for r in hull_rows:
    print(f"lambda={r['lambda']:<7g} max error in hull {r['max_error']:.2f}   never worse than VQ: {r['never_worse']}"
          f"   max |P* - P~| = {r['max_dev']:.2f}")
print(f"VQ: max error in hull {float(vq_err.max()):.2f}")
p_big, p_vq = scq_exact(z_in, codes2, 1e3)
print(f"lambda=1e3: max |P* - P~| = {float((p_big - p_vq).abs().max()):.3f}  (VQ is the limit lambda -> inf)")
p_fista, _ = scq_projected_gradient(z_in, codes2, 0.1, iters=3000)
print("projected gradient agrees with cvxpylayers to 1e-4:",
      bool(torch.allclose(p_fista, scq_exact(z_in, codes2, 0.1)[0], atol=1e-4)))

# %%
excess = max(r["excess"] for r in hull_rows)
bound_excess = max(r["bound_excess"] for r in hull_rows)
run.claim("inside the codebook's hull, SCQ's error is at most sqrt(lambda) |w - p~| (so exact as lambda -> 0), up to "
          "1e-7", bound_excess <= 1e-7, kind="math",
          thesis="any input inside the convex hull is exactly representable (section 5.3)",
          ours=f"largest excess over the bound at {len(z_in)} points, lambda in {cfg.hull_lams}: {bound_excess:.1e}; "
               f"max error {hull_rows[0]['max_error']:.1e} at lambda={cfg.hull_lams[0]:g}, "
               f"{hull_rows[2]['max_error']:.2f} at the thesis's lambda=0.1 (VQ: {float(vq_err.max()):.2f})",
          value=hull_rows[0]["max_error"])
run.claim("exact SCQ never quantizes worse than VQ, up to 1e-7", excess <= 1e-7, kind="math",
          thesis="smaller error than VQ, also outside the hull (section 5.3)",
          ours=f"largest excess of SCQ's error over VQ's at {len(z_in)} points, lambda in {cfg.hull_lams}: "
               f"{excess:.1e}", value=float(excess <= 1e-7))

# %% [markdown]
# ## 3. The scalable relaxation, and how far it lands from (5.8)
#
# Interior-point solves are too slow for training (the table below times one on 64 vectors). The DCO programs of
# {doc}`../03-dco/dco` meet the same cost but are unconstrained and have exact closed forms; (5.8) has constraints
# and no closed form, so Algorithm 9 decouples objective and constraints. Setting the gradient of the objective of
# (5.8) to zero,
# $2C^\top(CP - Z) + 2\lambda(P - \widetilde P) = 0$, gives the unconstrained minimizer
#
# $$
# P_{\text{ridge}} = (C^\top C + \lambda I)^{-1} (C^\top Z + \lambda \widetilde P),
# $$
#
# one $K\times K$ linear system with $n$ right-hand sides. Algorithm 9 then moves $P_{\text{ridge}}$ onto the simplex by
# $m$ rounds of alternating projections: clip at zero (the orthant), then shift each column by
# $(\mathbf 1^\top p - 1)/K$ (the hyperplane). Two remarks explain everything we measure below.
#
# * **Alternating projections do not compute the Euclidean projection**, and after finitely many rounds do not even
#   reach the simplex: the hyperplane step comes last, so columns sum to one but keep negative entries. The
#   *exact* Euclidean projection has a closed form {cite}`duchi2008projections`: $p = \max(v - \theta, 0)$ with the
#   threshold $\theta$ found by sorting $v$ decreasingly ($u_1 \ge u_2 \ge \dots$) and taking the largest $j$ with
#   $u_j > (\sum_{i \le j} u_i - 1)/j$, then $\theta = (\sum_{i\le j} u_i - 1)/j$ ($O(K\log K)$ per column).
#   Sorting is not even needed: Michelot's iteration {cite}`michelot1986finite` starts from
#   $\theta = (\mathbf 1^\top v - 1)/K$ and repeats $\theta \leftarrow (\sum_{v_i > \theta} v_i - 1)/|\{i : v_i > \theta\}|$;
#   $\theta$ only grows, the set above it only shrinks, and it stops at the exact threshold after a few batched
#   masked sums. `effcourse.scq.simplex.project_simplex` has both (`method="sort"` or `"threshold"`, the default); they
#   agree to rounding, gradients included.
# * **Even the exact projection of $P_{\text{ridge}}$ is not $P^\star$.** Completing the square, the objective of
#   (5.8) for one column is $(p - p_{\text{ridge}})^\top A (p - p_{\text{ridge}}) + \text{const}$ with
#   $A = C^\top C + \lambda I$. So $P^\star$ is the projection of $P_{\text{ridge}}$ in the metric of $A$, and the
#   Euclidean projection agrees with it only when $A$ is a multiple of the identity: orthogonal codes of equal norm,
#   which needs $K \le F$. With $K = 128 > F = 16$, $C^\top C$ has rank 16 and $A$ is far from isotropic.
#
# We compare the solvers on the same random instances ($z$ and codes from $N(0, 1)$, 64 columns) at a small size and at
# the thesis's $F = 16$, $K = 128$: objective of (5.8), distance to the exact $P^\star$, how many columns leave the
# simplex, and the time.  The claim at the end of this section repeats the Algorithm 9 measurement on five more random
# instances at $K = 128$ and takes the median.

# %%
layer_rows, layer_obj = ex.compare_solvers(cfg.layer_sizes, cfg.layer_columns, cfg.lam, cfg.alternating_steps,
                                           generator=run.generator_for(offset=600))
run.table(layer_rows, fmt=ex.SOLVER_TABLE_FORMAT)

# %%
# NBVAL_CHECK_OUTPUT
k_big = cfg.layer_sizes[-1][1]
for (k, name), r in layer_obj.items():
    if k == k_big:
        print(f"K={k} {name:28s} objective / exact = {r:.1f}")

# %% [markdown]
# The table answers the question "how far does Algorithm 9 land from (5.8)?" on this run's random instance. The
# thesis uses $m = 20$ rounds in its VQVAE experiments and $m = 2$ in its VQGAN ones. What this run measured:

# %%
display(Markdown(ex.solver_findings(layer_rows, k_big, cfg.alg9_steps)))
far = ex.alg9_objective_ratios(*cfg.layer_sizes[-1], cfg.layer_columns, cfg.lam, cfg.alg9_steps,
                               run.generator_for(offset=700), cfg.alg9_instances)
run.claim(f"median over {len(far)} random instances: Alg. 9 as printed reaches over 1.5x the optimal objective of "
          f"(5.8) at K={k_big}", np.median(far) > 1.5, kind="empirical",
          thesis="presented as a scalable relaxation of (5.8) that 'remains performant' (5.3)",
          ours=f"objective / optimum (m={cfg.alg9_steps}) = " + ", ".join(f"{r:.2f}" for r in far),
          value=np.median(far))

# %% [markdown]
# Two reasons make us train with the exact projection below and keep the thesis's alternating version for
# comparison: it always returns a point of the simplex, which finitely many alternating rounds do not, and it is the
# Euclidean projection that Algorithm 9's steps 4-5 approximate. It still does not give $P^\star$, for the metric
# reason above; when the codes are orthonormal ($K \le F$) the metric is isotropic and the exact projection of the
# ridge solution *is* $P^\star$ (a unit test checks it).

# %% [markdown]
# ## 4. Autoencoders on digits: VQ, VQ with replacement, SCQ
#
# The thesis trains VQVAE-type autoencoders on CIFAR-10 and GTSRB (Table 5.3): one stride-2 convolution, a
# $3\times 3$ convolution, two residual blocks (32 channels, 16 residual channels), a $1\times 1$ convolution to
# $F = 16$, a codebook of $K = 128$ codes, $\beta = 0.25$, $\lambda = 0.1$, batch 128. We keep all of that and change
# the data: scikit-learn's $8\times 8$ digits (pixels in $[0,1]$, the fixed split of `core.data`), so each image
# becomes a $4\times 4$ grid of 16 latent vectors. Departures from the thesis's protocol besides the data: 800
# training steps instead of 19,550, and three seeds (drawn from the page's `SEED`) instead of five runs. The optimizer
# and learning rate are not stated in the thesis; we use Adam at $10^{-3}$. SCQ uses
# the scalable layer with the exact simplex projection (section 3); Algorithm 9 as printed is tried at the end of
# this section. Codebooks start from $U(-1/K, 1/K)$ here; section 5 tries another initialization. The non-quantized
# autoencoder is the floor every quantizer is measured against.

# %%
if run.scale == "full":  # the thesis's CIFAR-10 runs come from the sweep (see "At the thesis's scale")
    results, models, hists = scq_sweep.collect_methods(run.sweep_results(), cfg, seeds, device=dev)
else:
    results, models, hists = ex.train_methods(cfg, data, seeds, device=dev)
for (kind, seed), r in results.items():
    if kind != "ae" and r is not None:
        for m in ("recon_mse", "quant_error", "perplexity_hard", "codes_used"):
            run.metric(f"{kind}/run{seeds.index(seed)}/{m}", r[m])

# %% [markdown]
# Test reconstruction error during training (one line per seed), and reconstructions of the same test digits:

# %% mystnb={"image": {"alt": "Test reconstruction MSE against training step, log scale, one line per seed and method: the autoencoder without quantizer in black, VQ in blue, VQ with replacement in orange and SCQ in green."}}
plot_test_curves(hists, first_seed=seeds[0])
plt.show()

# %% mystnb={"image": {"alt": "A grid of ten test digits (columns) in five rows: the input, then the reconstructions of the autoencoder without quantizer, VQ, VQ with replacement and SCQ, from the first seed's models."}}
plot_reconstructions({kind: models[kind, seeds[0]] for kind in cfg.methods}, data.x_test[:10])
plt.show()

# %% [markdown]
# The analogue of Table 5.1: test metrics, mean ± standard deviation over seeds. *Perplexity* is
# $\exp(\text{entropy})$ of the average code usage; for VQ the usage is the frequency of each code, for SCQ the thesis
# does not say, so we report both a **hard** version (each vector counts for its largest weight) and a **soft** one
# (average of the weights). "Codes used" counts codes that are some vector's largest weight; "nonzeros" is the number
# of nonzero weights per latent vector.

# %%
display(run.table(ex.table51_rows(cfg, results, seeds)))
run.table(ex.per_seed_rows(cfg, results, seeds), fmt=ex.PER_SEED_FORMAT, caption="Per seed.")

# %%
n_s = f"{len(seeds)} seed" + "s" * (len(seeds) > 1)
q_ratio = ex.ratios(results, "scq", "vq", "quant_error", seeds)
held_q = run.claim(f"worst of {n_s}: SCQ's quantization error is below half of VQ's", np.max(q_ratio) < 0.5,
                   kind="empirical", thesis="0.15e-3 vs 70.47 (CIFAR-10), 0.24e-3 vs 70.16 (GTSRB), Table 5.1",
                   ours="SCQ / VQ = " + ", ".join(f"{r:.2f}" for r in q_ratio), value=np.max(q_ratio), min_scale="book")
if "vq_rep" in cfg.methods:
    p_ratio = ex.ratios(results, "vq_rep", "vq", "perplexity_hard", seeds)
    held_p = run.claim(f"median over {n_s}: dead-code replacement raises VQ's perplexity by more than 1.2x",
                       np.median(p_ratio) > 1.2, kind="empirical",
                       thesis="106.07 vs 6.62 (CIFAR-10), 75.51 vs 8.89 (GTSRB), Table 5.1",
                       ours="VQ+rep / VQ = " + ", ".join(f"{r:.2f}" for r in p_ratio), value=np.median(p_ratio),
                       min_scale="book")
mse_ratio = ex.ratios(results, "scq", "vq", "recon_mse", seeds)
held_mse = run.claim(f"median over {n_s}: SCQ's reconstruction MSE is below VQ's", np.median(mse_ratio) < 1,
                     kind="empirical", thesis="MSE 1.53e-3 vs 41.19e-3 (CIFAR-10), 3.21e-3 vs 39.30e-3 (GTSRB)",
                     ours="SCQ / VQ = " + ", ".join(f"{r:.2f}" for r in mse_ratio), value=np.median(mse_ratio),
                     min_scale="book")

# %%
display(Markdown(ex.table51_findings(cfg, results, seeds)))

# %% [markdown]
# Two remarks on reading these numbers. Perplexity measures how evenly *one-hot* codes are used; a soft quantizer
# can use few codes as largest weights and still carry information in the convex weights, so neither definition
# captures how SCQ uses its codebook. The quantizer time is the forward pass on the whole test set on the CPU this
# page ran on; `tests/benchmarks/bench_scq.py` measures forward and backward passes as ratios to VQ.
#
# **Algorithm 9 as printed.** The same SCQ autoencoder trained with the alternating projection ($m = 20$) instead of
# the exact one:

# %%
alg9 = None
if cfg.alternating_train and run.scale == "full":
    alg9 = scq_sweep.collect_alg9(run.sweep_results(), seeds[0])
elif cfg.alternating_train:
    _, h9, r9 = ex.train_one(cfg, data, "scq_alg9", seeds[0], device=dev)
    alg9 = (h9, r9)
if alg9 is not None:
    display(Markdown(ex.alg9_findings(cfg, alg9, results, seeds)))

# %% [markdown]
# What keeps the exact version stable is that its weights are always a point of the simplex, so $z_q = Cp$ stays in
# the hull of the codes; the alternating projection's weights are only affine combinations and nothing bounds $z_q$.
# The exact projection is the one deviation from the thesis in our SCQ: Algorithm 9 with the exact simplex
# projection in place of steps 4-5.
#
# ## 5. Codebook initialization
#
# The thesis says only "randomly initialize". The usual VQ-VAE default draws codes from $U(-1/K, 1/K)$, a tiny ball at
# the origin that the encoder outputs start around; the other common choice is $N(0, 1)$, codes of norm about
# $\sqrt F = 4$ that mostly lie far from the encoder's initial outputs. The same four quantizers (and SimVQ, section
# 6) with $N(0,1)$ codebooks:

# %%
if run.scale == "full":
    init_res = scq_sweep.collect_init_study(run.sweep_results(), cfg, init_seeds)
else:
    init_res = ex.train_init_study(cfg, data, init_seeds, device=dev)
for (kind, seed), r in init_res.items():
    for m in ("recon_mse", "perplexity_hard", "codes_used") if r is not None else ():
        run.metric(f"normal/{kind}/run{init_seeds.index(seed)}/{m}", r[m])
if init_res:
    display(run.table(ex.init_rows(cfg, results, init_res, init_seeds[0]), fmt=ex.INIT_FORMAT,
                      caption=f"Seed {init_seeds[0]}."))
    display(Markdown(ex.init_findings(cfg, results, init_res, init_seeds[0])))
    rep_n = ex.ratios(init_res, "vq_rep", "vq", "perplexity_hard", init_seeds)
    run.claim(f"worst of {len(init_seeds)} seeds, N(0,1) codebooks: replacement raises VQ's perplexity by more than 5x",
              np.min(rep_n) > 5, kind="empirical",
              thesis="106.07 vs 6.62 (CIFAR-10), 75.51 vs 8.89 (GTSRB), Table 5.1: a collapsed VQ baseline",
              ours="VQ+rep / VQ = " + ", ".join(f"{r:.1f}" for r in rep_n), value=np.min(rep_n), min_scale="book")

# %% [markdown]
# What to look for: with far-away codes, VQ can only choose the few codes that happen to lie near the encoder's
# outputs, and the codes never chosen never move (section 1's collapse); replacement resets them to encoder outputs.
# SCQ gives every code with a nonzero weight a gradient, but with far-away codes its convex weights can concentrate
# on a corner of the hull.
#
# ## 6. Beyond the thesis: SimVQ
#
# SimVQ {cite}`zhu2024simvq` attacks collapse from another side. The codebook $C$ is drawn once and **frozen**; the
# quantizer uses the codes $W(C)$, a learned linear map (here $F\times F$ with a bias, started at the identity),
# with the ordinary nearest-code lookup, straight-through estimator and loss (5.5). Since the only trained parameters
# are those of $W$, every gradient step moves *all* codes, including the ones no encoder output chose. We run it in the
# setting of section 5, $N(0,1)$ codebooks (SimVQ's basis is $N(0, 1/F)$), on each of the seeds:

# %%
if init_res:
    used_vq = [init_res["vq", sd]["codes_used"] for sd in init_seeds]
    used_sim = [init_res["simvq", sd]["codes_used"] for sd in init_seeds]
    display(run.table(ex.simvq_rows(cfg, init_res, init_seeds), fmt=ex.SIMVQ_FORMAT))
    display(Markdown(ex.simvq_findings(cfg, results, init_res, init_seeds)))
    run.claim(f"worst of {len(init_seeds)} seeds: SimVQ uses over 3x as many codes as VQ where VQ collapses",
              min(b / a for a, b in zip(used_vq, used_sim)) > 3, kind="empirical",
              thesis="(not in the thesis) SimVQ paper: collapse fixed by one linear layer",
              ours="codes used VQ " + ", ".join(f"{a:.0f}" for a in used_vq) + " vs SimVQ "
                   + ", ".join(f"{b:.0f}" for b in used_sim) + f" of {cfg.num_codes}",
              value=min(b / a for a, b in zip(used_vq, used_sim)), min_scale="book")

# %% [markdown]
# Where does SCQ stand? What (5.8) changes is the straight-through estimator (gone) and the lookup's error (the
# distance to the hull instead of to the nearest code, section 2). Nothing in (5.8) acts on *which* codes are used,
# the problem that SimVQ and replacement target; the rankings above, from this run, show how much that matters here.
#
# ## What did not reproduce
#
# Numbers from this page (digits at the smoke and book scales, CIFAR-10 at full; $K=128$, $F=16$, seeds above) next
# to the thesis's (CIFAR-10, Table 5.1):

# %%
if SCALE != "smoke":
    display(run.table(ex.reproduction_rows(cfg, results, init_res, alg9, hull_rows[2]["max_error"], seeds)))
display(Markdown(ex.not_reproduced_findings(results, seeds)))

# %% [markdown]
# The thesis's VQ numbers are not the typical behaviour of VQ on its own protocol either: its "VQVAE + Rep" row, the
# same quantizer with dead codes reset, has a quantization error of 4.13e-3 against 70.47.
#
# ## At the thesis's scale
#
# At `SCALE = "full"` this page does not train: the thesis's CIFAR-10 protocol (Table 5.3: $32\times32 \to
# 16\times16$ latents, the architecture above with three input channels, 19,550 steps of batch 128, i.e. 50 epochs,
# five seeds) runs as a sweep of independent runs, and the cells of sections 4 to 6 read its results in place of
# training. Cheap cells (sections 2 and 3, the exercises) still run inline. With CIFAR-10's python batches under
# `$EFFCOURSE_DATA/cifar10`, run the sweep, then point the page at its folder:
#
# ```
# python -m effcourse.sweep plan 04-scq               # the runs and the FLOP-based estimate below
# python -m effcourse.sweep run 04-scq --out results  # resumable: run it again after a crash
# EFFCOURSE_RESULTS=results python -m effcourse.book.notebooks execute 04-scq --scale full
# ```
#
# The sweep trains 27 autoencoders: Table 5.1's VQ, VQ with replacement and SCQ on each of the five seeds, the
# non-quantized AE and SCQ with Algorithm 9 as printed on the first; and the $N(0, 1)$ codebook study of sections 5
# and 6 (VQ, VQ with replacement and SimVQ on the first three seeds, SCQ on the first). Each run saves model, Adam
# state, minibatch order and random streams once per epoch (391 steps), so a killed run resumes where it stopped and
# ends as it would have. The estimate, counted from the FLOPs of the model:

# %%
from effcourse.sweep import Sweep

full_sweep = Sweep("04-scq", seed=SEED)
full_hours = full_sweep.gpu_hours()
print(f"{len(full_sweep.specs)} runs, {full_hours:.2g} GPU-hours ({3600 * full_hours:.0f} GPU-seconds) of FLOPs on "
      "one H100-class GPU")

# %% [markdown]
# By FLOPs the whole table is seconds of GPU work: the model has 40,000 parameters. What takes time is the number of
# steps (19,550 per run, and 51 passes over the 10,000 test images), each a few small kernels plus SCQ's
# $128\times128$ solve and projection, so the runs are bound by per-step latency rather than arithmetic; we have not
# timed them on a GPU, and expect minutes per run rather than seconds. At `full` the claims table adds one row per
# number of the thesis's CIFAR-10 column below, ours (the mean over the seeds) against the thesis's with a tolerance
# of a factor of 2 either way. The reconstruction MSEs of the non-quantized AE, VQ with replacement and SCQ are
# asserted; VQ's row (a collapsed baseline, see above), the quantization errors and the perplexities (which the
# thesis does not define for SCQ) are reported only. GTSRB ($48\times48$, 10,450 steps) needs a loader that
# `effcourse.core.data` does not have. The thesis's numbers (Table 5.1):
#
# | method | CIFAR-10 MSE (1e-3) | quant error | perplexity | ms | GTSRB MSE (1e-3) | quant error | perplexity | ms |
# |---|---|---|---|---|---|---|---|---|
# | VQVAE | 41.19 | 70.47 | 6.62 | 4.45 | 39.30 | 70.16 | 8.89 | 11.61 |
# | VQVAE + Rep | 5.49 | 4.13e-3 | 106.07 | 5.56 | 3.91 | 1.61e-3 | 75.51 | 11.93 |
# | RQVAE | 4.87 | 44.98e-3 | 20.68 | 12.4 | 4.96 | 38.29e-3 | 10.41 | 25.84 |
# | SCQVAE | 1.53 | 0.15e-3 | 124.11 | 7.42 | 3.21 | 0.24e-3 | 120.55 | 12.93 |
# | non-quantized AE | 0.44 | — | — | — | 1.25 | — | — | — |

# %%
if run.scale == "full":  # Table 5.1, CIFAR-10 column: ours (mean over the seeds) within a factor of 2 of it
    for r in ex.thesis_comparison(cfg, results, seeds, factor=2.0):
        run.claim(f"{r['method']}: mean {r['label']} over {n_s} within 2x of Table 5.1's", r["within"],
                  kind="empirical", thesis=f"{r['thesis']:.3g} (CIFAR-10)",
                  ours=f"{r['ours']:.3g} (ours / thesis = {r['ratio']:.2f})", value=r["ratio"], min_scale="full",
                  assert_claim=r["assert"])

# %% [markdown]
# The VQGAN experiments of Table 5.2 (LSUN, $256\times256$, LPIPS with pretrained weights) are out of reach offline.
#
# Where this chapter departs from the thesis, listed once as `DEVIATIONS` in `effcourse/scq/config.py`
# (the reproduction report lists the same entries):

# %%
run.deviations_table()

# %% [markdown]
# ## Exercises
#
# Each exercise changes one thing in the experiments of sections 2 and 3 and asks for the consequence that the
# equations predict. The solutions, behind the toggles, use the chapter's own functions and variables and check
# the prediction with an `assert`.
#
# ```{exercise} The convex-hull property as $\lambda \to 0$
# :label: ch04-hull-limit
#
# Section 2 bounds SCQ's error at a point $z = Cw$ of the hull by $\sqrt\lambda\,\|w - \tilde p\|$. Solve (5.8) with
# `scq_exact` for the 40 points `z_in` of section 2 at $\lambda = 10^{-1}, \dots, 10^{-4}$, together with 40
# points of norm $r + 1$, where $r$ is the largest norm of the six codes `codes2`. What happens to the largest error
# inside the hull, and to the smallest error outside it, as $\lambda \to 0$? Why can the second never fall below 1?
# ```
#
# ```{solution-start} ch04-hull-limit
# :class: dropdown
# ```
#
# Two points of the simplex are at most $\sqrt 2$ apart, so inside the hull the error is at most $\sqrt{2\lambda}$
# and must vanish as $\lambda \to 0$; the code checks this bound at each $\lambda$. Outside, no $\lambda$ helps:
# $Cp$ is a convex combination of codes, so $\|Cp\| \le r$ and $\|z - Cp\| \ge \|z\| - r = 1$ for every feasible
# $p$. As $\lambda \to 0$ SCQ's error tends to the distance from $z$ to the hull, the error that the figure of
# section 2 shows outside the polygon. The code asserts both: an error of at most $\sqrt{2\lambda}$ inside and at
# least 1 outside (each up to the solver's $10^{-7}$). The bound is only an upper bound: read off the printed errors
# inside how fast they actually fall with $\lambda$.

# %%
r_codes = float(codes2.norm(dim=1).max())  # no point of the hull has a larger norm
g_out = run.generator_for(offset=800)
d_out = torch.randn(40, 2, generator=g_out, dtype=torch.float64)
z_out = d_out / d_out.norm(dim=1, keepdim=True) * (r_codes + 1)  # 40 points of norm r + 1
z_both = torch.cat([z_in, z_out])
for lam_ex in (1e-1, 1e-2, 1e-3, 1e-4):
    p_ex, _ = scq_exact(z_both, codes2, lam_ex)
    err_ex = (z_both - p_ex @ codes2).norm(dim=1)
    inside, outside = float(err_ex[:len(z_in)].max()), float(err_ex[len(z_in):].min())
    print(f"lambda={lam_ex:<6g} largest error inside {inside:.1e} (sqrt(2 lambda) = {np.sqrt(2 * lam_ex):.1e}), "
          f"smallest error outside {outside:.3f}")
    assert inside <= np.sqrt(2 * lam_ex) + 1e-7, "inside the hull the error is at most sqrt(2 lambda)"
    assert outside >= 1 - 1e-7, "outside the hull the error is at least |z| - r = 1, whatever lambda"

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise} How fast does SCQ become VQ?
# :label: ch04-vq-rate
#
# As $\lambda \to \infty$ the weights $p^\star$ tend to VQ's one-hot $\tilde p$. The feasibility of $\tilde p$ gives
# $\lambda\|p^\star - \tilde p\|^2 \le \|z - C\tilde p\|^2$, a deviation of order $1/\sqrt\lambda$. Measure the
# largest deviation $\max_z \|p^\star - \tilde p\|$ over `z_in` at $\lambda = 1, 10, 100, 1000$: does it shrink by
# $\sqrt{10}$ or by $10$ per decade of $\lambda$? Prove the rate you see.
# ```
#
# ```{solution-start} ch04-vq-rate
# :class: dropdown
# ```
#
# The deviation falls at least as fast as $1/\lambda$, faster than the feasibility argument says. The objective $h$
# of (5.8) is $2\lambda$-strongly convex. Adding the strong-convexity inequalities at $p^\star$ and at a feasible
# $x$, and using the optimality condition $\langle \nabla h(p^\star), x - p^\star\rangle \ge 0$, gives
# $2\lambda\|x - p^\star\|^2 \le \langle \nabla h(x), x - p^\star\rangle$. At $x = \tilde p$ the penalty has no
# gradient, $\nabla h(\tilde p) = 2C^\top(C\tilde p - z)$, so
#
# $$
# \|p^\star - \tilde p\| \le \frac{\|C^\top (z - C\tilde p)\|}{\lambda} ,
# $$
#
# the residual of VQ seen through the codes, divided by $\lambda$. The code asserts this bound at every point and
# every $\lambda$ (up to the solver's $10^{-7}$) and prints $\lambda$ times the largest deviation: it stays below
# the bound's constant instead of growing like $\sqrt\lambda$.

# %%
for lam_ex in (1.0, 10.0, 100.0, 1000.0):
    p_ex, p_vq_ex = scq_exact(z_in, codes2, lam_ex)
    dev_ex = (p_ex - p_vq_ex).norm(dim=1)
    rate_bound = ((z_in - p_vq_ex @ codes2) @ codes2.T).norm(dim=1) / lam_ex  # |C^T (z - C p~)| / lambda
    print(f"lambda={lam_ex:<6g} max |p* - p~| = {float(dev_ex.max()):.2e}   lambda x max |p* - p~| = "
          f"{lam_ex * float(dev_ex.max()):.3f}   (bound {lam_ex * float(rate_bound.max()):.3f})")
    assert float((dev_ex - rate_bound).max()) <= 1e-7, "|p* - p~| <= |C^T (z - C p~)| / lambda at every point"

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise} When is Algorithm 9 exact?
# :label: ch04-isotropic-codes
#
# Section 3 argues that the Euclidean projection of $P_{\text{ridge}}$ solves (5.8) only when $C^\top C + \lambda I$
# is a multiple of the identity. Build four orthogonal codes of norm 2 in $\mathbb{R}^6$ (twice the Q factor of the
# QR decomposition of a random $6 \times 4$ matrix) and compare `scq_scalable` (ridge solve and exact projection)
# with `scq_exact` on 64 random points at the thesis's $\lambda$. Then stretch the first code by a factor 3 and
# compare again.
# ```
#
# ```{solution-start} ch04-isotropic-codes
# :class: dropdown
# ```
#
# With orthogonal codes of norm 2, $C^\top C + \lambda I = (4 + \lambda) I$: the metric of section 3 is isotropic,
# the projection in that metric is the Euclidean one, and the two solvers agree up to the interior-point solver's
# accuracy (the code asks for $10^{-6}$). Stretching one code keeps the codes orthogonal but makes
# $C^\top C = \operatorname{diag}(36, 4, 4, 4)$: the Euclidean projection now moves the weights in the wrong metric,
# and some weight differs by more than $10^{-2}$ (the second assertion).

# %%
from effcourse.scq.solvers import scq_scalable

g_iso = run.generator_for(offset=810)
q_iso, _ = torch.linalg.qr(torch.randn(6, 4, generator=g_iso, dtype=torch.float64))
codes_iso = 2 * q_iso.T  # four orthogonal codes of norm 2 in R^6, one per row
z_iso = torch.randn(64, 6, generator=g_iso, dtype=torch.float64)
stretch = torch.tensor([[3.0], [1.0], [1.0], [1.0]], dtype=torch.float64)
gap_iso = {}
for label, c_iso in (("orthogonal, equal norms", codes_iso), ("first code stretched x3", codes_iso * stretch)):
    gap_iso[label] = float((scq_scalable(z_iso, c_iso, cfg.lam)[0] - scq_exact(z_iso, c_iso, cfg.lam)[0]).abs().max())
    print(f"{label:24s} largest |Alg. 9 weight - exact weight| = {gap_iso[label]:.1e}")
assert gap_iso["orthogonal, equal norms"] <= 1e-6, "isotropic metric: Alg. 9 with the exact projection solves (5.8)"
assert gap_iso["first code stretched x3"] >= 1e-2, "anisotropic metric: the Euclidean projection is not P*"

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise} Algorithm 9's alternating projection, run to the end
# :label: ch04-alternating-limit
#
# The thesis stops the alternating projection after $m = 20$ rounds. On a random instance at the thesis's sizes
# ($F = 16$, $K = 128$, 64 columns, $\lambda = 0.1$), apply `project_simplex_alternating` to $P_{\text{ridge}}$ for
# $m = 20$ and $m = 5000$ rounds and compare with `project_simplex`. Then do the same for $0.1\,P_{\text{ridge}}$.
# When does the alternation converge to the Euclidean projection, and where does it stop otherwise?
# ```
#
# ```{solution-start} ch04-alternating-limit
# :class: dropdown
# ```
#
# Follow one column $v$. After a hyperplane step the column sums to one, and clipping can only raise that sum, so
# every shift $(\mathbf 1^\top p - 1)/K$ after the first is $\ge 0$. If the positive parts of $v$ sum to one or more,
# the first shift is $\ge 0$ too; an entry once clipped then stays clipped, and after each clip the iterate is
# $\max(v - s, 0)$ for the shift $s$ accumulated so far. In the limit it sums to one, which makes $s$ the threshold
# $\theta$ of the exact projection: the alternation converges to the Euclidean projection, but slowly (the excess
# over one shrinks by the factor $1 - k_+/K$ per round, $k_+$ the positive entries), so at $m = 20$ columns are
# still off the simplex. If the positive parts sum below one, the first shift is negative and lifts *every* entry,
# the clipped ones included, to $\max(v_i, 0) + (1 - \sum_j \max(v_j, 0))/K > 0$: a point of the simplex after one
# round, with all $K$ weights positive, and not the Euclidean projection. The code asserts both limits: agreement
# to $10^{-9}$ for the first kind of column, all weights positive and a gap of at least $10^{-3}$ for the second.

# %%
from effcourse.scq.codebook import nearest_code
from effcourse.scq.simplex import project_simplex_alternating, simplex_violation
from effcourse.scq.solvers import scq_ridge

f_alt, k_alt = cfg.layer_sizes[-1]
g_alt = run.generator_for(offset=820)
z_alt = torch.randn(cfg.layer_columns, f_alt, generator=g_alt, dtype=torch.float64)
c_alt = torch.randn(k_alt, f_alt, generator=g_alt, dtype=torch.float64)
onehot_alt = torch.nn.functional.one_hot(nearest_code(z_alt, c_alt), k_alt).to(z_alt.dtype)
v_ridge = scq_ridge(z_alt, c_alt, onehot_alt, cfg.lam)
for factor in (1.0, 0.1):
    v_alt = factor * v_ridge
    high = v_alt.clamp(min=0).sum(1) >= 1  # columns whose positive parts sum to one or more
    off_m = float(simplex_violation(project_simplex_alternating(v_alt, cfg.alg9_steps)).max())
    p_lim = project_simplex_alternating(v_alt, 5000)
    gap_lim = (p_lim - project_simplex(v_alt)).norm(dim=1)
    print(f"{factor:g} x P_ridge: {int(high.sum())} of {len(v_alt)} columns with positive parts summing to >= 1; "
          f"off the simplex by {off_m:.0e} after m={cfg.alg9_steps} and {float(simplex_violation(p_lim).max()):.0e} "
          f"after 5000; distance to the Euclidean projection {float(gap_lim.min()):.0e} to {float(gap_lim.max()):.0e}")
    assert bool((gap_lim[high] <= 1e-9).all()), "positive parts summing to >= 1: converges to the projection"
    assert bool((p_lim[~high] > 0).all() and (gap_lim[~high] >= 1e-3).all()), "below 1: a dense point, not it"

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ## Claims
#
# Empirical claims first, then checks of the mathematics (identities and guarantees, up to the stated tolerance).
# Every asserted row held when this page was built; rows marked *not asserted* ran at a scale too small for the
# claim, and *reported* rows are shown with their outcome but never asserted (section 4 says why). A claim over
# seeds names its criterion (worst seed, median) and uses the seeds drawn from this page's `SEED`, so another `SEED`
# is an independent replicate. The thesis's numbers come from CIFAR-10 and GTSRB; ours from the digits protocol
# above.

# %%
run.claims_table()
