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
# # Differentiable convex optimizers: learning an update rule through a convex program
#
# A gradient step is the solution of a tiny optimization problem: minimize a linear model of the loss plus a
# penalty for moving far. Chapter 4 of {cite}`gautam2024thesis` (and {cite}`gautam2023dco`) takes that sentence
# literally. If the step is the argmin of a convex program, we can give the program parameters, differentiate its
# solution with respect to them {cite}`amos2017optnet,agrawal2019dcl`, and *meta-learn* the parameters on a family
# of related problems, so that the learned update rule solves new problems from the family faster than a tuned
# SGD, Adam or RMSProp. The thesis calls such rules **differentiable convex optimizers (DCO)**.
#
# This chapter rebuilds the idea and checks what it can and cannot do:
#
# 1. Gradient descent and momentum as argmins of convex programs, and the three parameterized programs of the
#    thesis (DCOG, DCOGD, DCOM), recovered exactly.
# 2. Solving and differentiating those programs with `cvxpylayers`: the rewrite that cvxpy's parameter rules
#    need, and the solver tolerance that makes the layer agree with the closed form.
# 3. The meta-learning loop (Algorithm 7).
# 4. The theory: on shifted least squares, meta-trained DCOGD converges to the rule that solves every task in one
#    step (Theorem 6), checked number by number.
# 5. The three experiments of the thesis (least squares, Beverton-Holt system identification, smooth
#    interpolation) against tuned baselines.
# 6. Pitfalls: what a one-step training horizon cannot see, and why DCOGD has nothing to learn on an isotropic
#    family.
# 7. What the convex-program path costs compared with the closed form.

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
# The chapter has no data set: its inner problems are *task families*, drawn in each section from
# `effcourse.dco.tasks` (least squares, a shifted fixed-design variant, and two small regression networks). The
# DCO rules live in `effcourse.dco.layers`, the meta-learning loop in `effcourse.dco.meta`, the tuned baselines in
# `effcourse.dco.baselines`, Theorem 6's exact references in `effcourse.dco.theory`, and each experiment of this
# page is one function of `effcourse.dco.experiments` (its figures in `effcourse.dco.figures`), so that the cells
# below only choose sizes and read results. Everything runs in float64: the theory checks compare against machine
# precision, and the tasks are small. Every random draw comes from a generator `run.generator_for(offset)`, seeded
# with $1000\cdot$`SEED` + offset, one offset per experiment (the run records these experiment seeds), so that a
# run with another `SEED` is an independent replicate: no random draw of this chapter is fixed.

# %%
import warnings
from collections import Counter
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

from effcourse import Run
from effcourse.dco.baselines import BASELINES
from effcourse.dco.experiments import (
    backend_fidelity,
    compare_on_family,
    dco_rules,
    final_losses,
    first_order_steps_as_dco,
    network_rows,
    network_summary,
    one_step_horizon_pitfall,
    theorem6_check,
    verdict_rows,
)
from effcourse.dco.figures import plot_curves, plot_horizon_pitfall, plot_theorem6
from effcourse.dco.layers import DCOMomentum, dco_general_descent_problem, dco_gradient_problem, printed_problem
from effcourse.dco.meta import meta_step_seconds
from effcourse.dco.sweep import collect, qp_solves
from effcourse.dco.tasks import beverton_holt_tasks, interpolation_tasks, least_squares_tasks
from effcourse.sweep import Sweep

# %%
run = Run("03-dco", scale=SCALE, seed=SEED, device=DEVICE)
cfg = run.cfg
dev = run.device
torch.set_default_dtype(torch.float64)
# diffcp's backward pass emits a NumPy-2 DeprecationWarning per solved problem; it says nothing about our results
warnings.filterwarnings("ignore", category=DeprecationWarning, module="cvxpylayers")
run

# %% [markdown]
# ## 1. First-order steps are argmins of convex programs
#
# Take a differentiable $f$ and a current point $x^{(t)}$. Gradient descent replaces $f$ near $x^{(t)}$ by its
# linear model and adds a proximity penalty:
#
# $$
# x^{(t+1)} = \arg\min_x \Big\{ \nabla f(x^{(t)})^\top (x - x^{(t)}) + \frac{\lambda}{2}\,\|x - x^{(t)}\|_2^2 \Big\}.
# \tag{4.2}
# $$
#
# The objective is a strictly convex quadratic in $x$; setting its gradient to zero gives
# $\nabla f(x^{(t)}) + \lambda (x - x^{(t)}) = 0$, i.e. $x^{(t+1)} = x^{(t)} - \tfrac{1}{\lambda}\nabla f(x^{(t)})$.
# So the *learning rate is $1/\lambda$* (the thesis calls $\lambda$ itself the step size; the algebra says
# otherwise). Momentum keeps a state, an exponential average of gradients,
#
# $$
# S^{(t+1)} = \beta S^{(t)} + (1-\beta)\nabla f(x^{(t)}), \qquad S^{(1)} := \nabla f(x^{(1)}),
# \tag{4.3}
# $$
#
# and puts it where the gradient was: $x^{(t+1)} = \arg\min_x \{ (S^{(t+1)})^\top (x - x^{(t)}) + \tfrac{\lambda}{2}
# \|x - x^{(t)}\|^2 \}$ (4.4).
#
# The thesis parameterizes these programs. Writing $G^{(t)}$ for the gradient and $\odot$ for the elementwise
# product, its three **DCO** update rules and their closed forms (each is an unconstrained strictly convex QP) are
#
# | rule | program | closed form | meta-parameters $\phi$ |
# |---|---|---|---|
# | DCOG (4.13) | $\arg\min_\theta\, G^\top\theta + \tfrac12\lVert\Lambda\odot(\theta-\theta^{(t)})\rVert^2$ | $\theta^{(t)} - G \oslash \Lambda^{2}$ | $\Lambda\in\mathbb{R}^p$ |
# | DCOGD (4.14) | $\arg\min_\theta\, (BG)^\top\theta + \tfrac12\lVert\theta-\theta^{(t)}\rVert^2$ | $\theta^{(t)} - BG$ | $B\in\mathbb{R}^{p\times p}$ |
# | DCOM (4.15-4.16) | $S' = M\odot G + (1-M)\odot S$, then DCOG with $S'$ for $G$ | $\theta^{(t)} - S' \oslash \Lambda^{2}$ | $\Lambda, M\in\mathbb{R}^p$ |
#
# DCOG learns one learning rate $1/\Lambda_j^2$ per weight; DCOGD any linear preconditioner (DCOG is the case
# $B = \mathrm{diag}(1/\Lambda^2)$); DCOM a per-weight learning rate *and* a per-weight averaging constant. With
# $\Lambda = \sqrt{\lambda}\,\mathbf 1$ DCOG is gradient descent, and with $M = (1-\beta)\mathbf 1$ as well DCOM is
# momentum (4.3)-(4.4). Nothing in the programs keeps them well posed: DCOG's QP is strictly convex only if every
# $\Lambda_j \neq 0$, and $S'$ is an average only if $M \in [0, 1]$. The library's layers use
# $\max(|\Lambda|, 10^{-3})$ and clip $M$ to $[0, 1]$, which leaves every well-posed $\phi$ untouched.
#
# The check below runs 20 steps of GD and of momentum on random quadratics, once by the textbook recursion and
# once through the DCO layers; it also solves (4.2) with a convex solver and compares with the GD step.

# %%
# NBVAL_CHECK_OUTPUT
err = first_order_steps_as_dco(run.generator_for(1), p=8, lam=4.0, beta=0.9, steps=20)
err_gd, err_mom, err_solver = err["gd"], err["momentum"], err["solver"]
print(f"DCOG with Lambda = sqrt(lambda) 1 is GD:            max |diff| < 1e-12: {err_gd < 1e-12}")
print(f"DCOM with M = (1 - beta) 1 is EMA momentum:         max |diff| < 1e-12: {err_mom < 1e-12}")
print(f"cvxpylayers' argmin of (4.2) is the GD step:         rel. diff  < 1e-7 : {err_solver < 1e-7}")

# %%
run.claim("GD and momentum are DCOG and DCOM at constant Lambda, M (to 1e-12)", max(err_gd, err_mom) < 1e-12,
          kind="math", thesis="(4.2)-(4.4) are special cases of (4.13), (4.15)-(4.16)",
          ours=f"max diff over 20 steps {max(err_gd, err_mom):.1e} (iterates of size ~1; tolerance 1e-12); "
               f"solver vs GD step {err_solver:.1e} (reported)")

# %% [markdown]
# ## 2. Solving the programs with cvxpylayers
#
# The thesis keeps the programs as programs, "to stay true to the DCO framework", and solves them with
# `cvxpylayers` {cite}`agrawal2019dcl`: the layer builds the problem once with cvxpy, solves it for each input with
# a conic solver (diffcp with SCS by default) and differentiates the solution through the KKT conditions.
# Differentiating through the KKT conditions is implicit differentiation, the device that
# {doc}`../01-implicit-models/implicit-models` uses for the equilibrium of an implicit model: no solver iteration is
# stored, and one adjoint linear system at the solution gives the gradient. {doc}`../04-scq/scq` puts the same
# kind of layer inside a network, as the quantizer of an autoencoder; there the gradient flows to the program's
# inputs (the latents and the codebook), here to the parameters of an update rule.
#
# **The DPP rewrite.** cvxpylayers accepts only problems that follow cvxpy's *disciplined parametrized
# programming* rules, and the programs as printed break them: in (4.13) the penalty
# $\Lambda\odot(\theta - \theta^{(t)})$ contains the product $\Lambda\odot\theta^{(t)}$ of two parameters, and in
# (4.14) the linear term $BG$ is a parameter times a parameter. The fix is to compute those products in torch and
# hand the program the result as a single parameter:
#
# $$
# \text{DCOG:}\quad \arg\min_\theta\; G^\top\theta + \tfrac12 \|\Lambda \odot \theta - c\|^2,\quad c := \Lambda\odot\theta^{(t)};
# \qquad
# \text{DCOGD:}\quad \arg\min_\theta\; q^\top\theta + \tfrac12\|\theta - \theta^{(t)}\|^2,\quad q := BG .
# $$
#
# DCOM is the DCOG program with $S'$, computed in torch, in place of $G$. The DCOG objective changes only by a
# constant, so the argmin is the same, and because $c$, $q$ and $S'$ are computed by torch the gradient still
# reaches $\Lambda$, $M$ and $B$. The objectives are written as `sum_squares` of affine expressions, the form the
# default diffcp backend accepts.

# %%
# NBVAL_CHECK_OUTPUT
for kind, builder in (("gradient", dco_gradient_problem), ("general_descent", dco_general_descent_problem)):
    print(f"{kind:16s} printed form is DPP: {printed_problem(kind, 4).is_dpp()}   "
          f"rewritten form is DPP: {builder(4)[0].is_dpp()}")

# %% [markdown]
# **The solver tolerance.** SCS is a first-order conic solver: at its default tolerance the layer's solution is
# only near the closed form, and the difference can exceed many of the meta-gradient's entries. The library's
# layers therefore tighten SCS to `eps = 1e-9`. The gradient with respect to $\phi$ goes through diffcp's
# iterative adjoint solve, which has its own tolerance, so we expect it to agree less closely than the value.
# Below: the three rules at a random $\phi$, a batch of tasks, both tolerances; the relative error of
# $\theta^{(t+1)}$ and of $\partial \langle w, \theta^{(t+1)}\rangle / \partial\phi$ for a random $w$. The claim
# asks for $10^{-5}$ at the tight tolerance, a tolerance well above what `eps = 1e-9` should give.

# %%
fidelity_rows, worst = backend_fidelity(cfg.fidelity_p, cfg.fidelity_tasks, run.generator_for(2))
run.table(fidelity_rows, floatfmt=".1e")

# %%
loose_v, loose_g, tight_v, tight_g = (max(r[k] for r in fidelity_rows) for k in list(fidelity_rows[0])[1:])
print(f"largest relative differences: default tolerance {loose_v:.0e} (value), {loose_g:.0e} (meta-gradient); "
      f"eps = 1e-9: {tight_v:.0e} (value), {tight_g:.0e} (meta-gradient)")
run.claim("cvxpylayers = closed form to 1e-5 (value and meta-gradient)", worst < 1e-5, kind="math",
          thesis="the QPs are solved by CVXPY Layers; they have closed forms",
          ours=f"worst relative difference {worst:.1e} over DCOG, DCOGD, DCOM (p={cfg.fidelity_p}, "
               f"{cfg.fidelity_tasks} tasks)")

# %% [markdown]
# Since the two backends compute the same function, the experiments below run the closed form (`backend` in the
# configuration; the `full` configuration switches to cvxpylayers, as the thesis ran it). Section 7 measures what
# the convex-program path costs.
#
# ## 3. Meta-learning the update rule (Algorithm 7)
#
# A *task* $\mathcal T_i = (l_i, l_i^{\mathrm{val}})$ is an inner problem $\min_\theta l_i(\theta)$ with a
# validation criterion; tasks are drawn from a distribution $\mathcal D$. An optimizer with meta-parameters $\phi$
# and state $S$ maps $(\theta^{(t)}, S^{(t)}, G^{(t)})$ to $(\theta^{(t+1)}, S^{(t+1)})$ (4.7); running it $T$ times
# from $\theta_i^{(1)}$ is $\mathrm{Opt}_T(\theta_i^{(1)}, S_i^{(1)}; \phi)$. Meta-training minimizes the average
# validation loss after $T$ steps over $N$ training tasks,
#
# $$
# l^{\mathrm{total}}(\phi) = \frac1N \sum_{i=1}^N l_i^{\mathrm{val}}\big(\mathrm{Opt}_T(\theta_i^{(1)}, S_i^{(1)}; \phi)\big),
# \qquad \phi^{(k+1)} = \mathrm{MetaOpt}\big(\phi^{(k)}, \nabla_\phi l^{\mathrm{total}}(\phi^{(k)})\big),
# \tag{4.10-4.11}
# $$
#
# by backpropagating through the $T$ unrolled steps (and through each convex program). Algorithm 7 does one
# MetaOpt step per "epoch" over all $N$ tasks; Remark 14 allows a random minibatch of tasks per step instead. In
# `effcourse.dco.meta.meta_train` the tasks are evaluated as one batch (every task family in
# `effcourse.dco.tasks` computes $N$ losses and $N$ gradients at once), `task_batch` gives Remark 14's minibatches,
# and `horizon=T > 1` keeps the inner gradients on the graph (for $T > 1$, $G^{(t)}$ depends on $\phi$ through
# $\theta^{(t)}$). This loop is not the minibatch training loop of the other chapters (`effcourse.core.train.fit`):
# its "model" is the update rule, one meta-step unrolls $T$ inner steps on a whole batch of tasks, and no data set is
# ever split into minibatches. A learned rule is then scored by `effcourse.dco.meta.evaluate_optimizer`: run it from
# a fresh start on held-out tasks, with $\phi$ frozen, and record the mean validation loss after every step.
#
# The thesis's experiments fix the remaining choices: $T = 1$, MetaOpt = RMSProp with PyTorch's defaults
# (learning rate $10^{-2}$), $M = 20$ epochs, and inner gradients **normalized** before they enter the DCO "to
# handle ill-posed inputs" (we divide each task's gradient by its $\ell_2$ norm). One choice the thesis leaves
# open matters a great deal: Algorithm 7 initializes $\theta_i^{(1)}$ once, before the epoch loop, and as printed
# every epoch restarts from it (**reset**). The alternative carries each task's $\theta_i^{(T+1)}$ and state into
# the next epoch (**persistent**), so successive meta-steps see later and later parts of the trajectories. We run
# both.
#
# ## 4. Theory: meta-trained DCOGD learns the one-step rule (Theorem 6)
#
# Take a *fixed* design $X \in \mathbb R^{n\times p}$ with $X^\top X$ invertible and tasks that shift the target,
#
# $$
# \min_{\theta\in\mathbb R^p} \|X\theta - (y + X\Delta_i)\|_2^2 . \tag{4.17}
# $$
#
# With $\theta' = (X^\top X)^{-1}X^\top y$, task $i$ is solved by $\theta' + \Delta_i$ and every task has the same
# optimal value $l^* = \|X\theta' - y\|^2$. One DCOGD step from $\theta_i^{(1)}$ with $T = 1$ gives
# $\theta_i^{(2)} = \theta_i^{(1)} - BG_i$, $G_i = 2X^\top X(\theta_i^{(1)} - \Delta_i) - 2X^\top y$, so
#
# $$
# l^{\mathrm{total}}(B) = \frac1N\sum_{i=1}^N \big\|X B G_i - X\theta_i^{(1)} + y + X\Delta_i\big\|^2 . \tag{4.20}
# $$
#
# * **The optimal rule.** $B^* = \tfrac12 (X^\top X)^{-1}$ makes the step a Newton step, which lands on the minimizer
#   of a quadratic: $l^{\mathrm{total}}(B^*) = l^*$ (4.21). (The thesis prints $\|(X^\top X)^{-1}X^\top y - y\|^2$
#   there; an $X$ is missing in front.)
# * **Strong convexity.** $l^{\mathrm{total}}$ is a quadratic in $\mathrm{vec}(B)$ with Hessian
#   $\tfrac2N \big(\sum_i G_iG_i^\top\big) \otimes X^\top X$, positive definite iff the $G_i$ span $\mathbb R^p$, iff
#   $Z_i := \theta_i^{(1)} - \Delta_i - \theta'$ do (because $G_i = 2X^\top X Z_i$).
# * **Linear convergence.** With MetaOpt = gradient descent at step $\eta = 1/L$, where
#   $L = \tfrac2N\lambda_{\max}(\sum_i G_iG_i^\top)\lambda_{\max}(X^\top X)$ and $\mu$ the same with $\lambda_{\min}$,
#   $\|B^{(k)} - B^*\|_F^2 \le (1-\mu/L)^k\|B^{(0)} - B^*\|_F^2$, and the one-step loss on a *new* task converges
#   to $l^*$ at the same rate.
#
# Two remarks sharpen the statement. Only the span condition matters (the targets need not be shifts in the range
# of $X$: the Newton step solves any least-squares target), but $N = p$ tasks make $\mu/L$ tiny in practice, so we
# use $N = 10p$. And the theorem is about *unnormalized* gradients: with normalized ones the step cannot scale with
# $\|G_i\|$, and no fixed $B$ reaches $l^*$.
#
# We check four things, each against an exact reference: (i) $l^{\mathrm{total}}(B^*) = l^*$; (ii) the bound at
# every meta-step with $N = 10p$; (iii) with $N < p$ tasks the training loss falls towards $l^*$ while $B$ stays
# away from $B^*$, so a new task is not solved (the minimizer is not unique); (iv) with normalized gradients even
# the *best* fixed $B$ (found exactly by a linear least-squares solve in $\mathrm{vec}(B)$) leaves a gap on new
# tasks. These are checks of mathematics, each up to a tolerance set by float64, not statements about training.
#
# **The float64 floor.** Meta-gradient descent cannot bring $B^{(k)}$ closer to $B^*$ than rounding allows: each
# step adds an error of about $\epsilon\|B^*\|_F$ ($\epsilon$ the float64 machine epsilon), which the flattest
# direction forgets only at the rate $\mu/L$, so the distance settles near $\epsilon \|B^*\|_F L/\mu$ while the bound
# keeps falling. Below $(64\,\epsilon\|B^*\|_F L/\mu)^2$ a comparison of the squared distance with the bound would
# test the arithmetic, not the theorem: we compare the bound at the meta-steps where it lies above that floor, and
# at the others check only that the distance stays at the floor.

# %%
thm = theorem6_check(cfg.thm_n, cfg.thm_p, cfg.thm_tasks, cfg.thm_few_tasks, cfg.thm_target_tasks, cfg.thm_steps,
                     generator=run.generator_for(3))
big, few = thm.runs["N = 10p"], thm.runs["N < p"]
exact_gap, l_star, norm_gap = thm.exact_gap, thm.l_star, thm.norm_gap
few_fell = few.train_gap < 1e-3 * few.train_gap0  # the training gap falls by more than 1000x
few_away = few.dist > 0.25 * few.dist0  # ... while B_K stays more than a quarter of ||B_0 - B*|| from B*

# %%
# NBVAL_CHECK_OUTPUT
print(f"(i)   l_total(B*) - l* = 0 to 1e-9 relative:                      {abs(exact_gap) < 1e-9 * l_star}")
print(f"(ii)  bound holds at every meta-step above the float64 floor:     {big.bound_ok}")
print(f"(iii) N < p: training gap falls > 1e3x: {few_fell};  B_K stays > ||B_0 - B*|| / 4 from B*: {few_away}")
print(f"(iv)  normalized gradients, best fixed B: new-task gap > 1:       {norm_gap > 1}")

# %% mystnb={"image": {"alt": "Squared distance of the meta-learned DCOGD matrix to the optimal rule against meta-steps, log scale, for N = 10p training tasks with its dashed linear-convergence bound (and a dotted float64 floor when the bound reaches it), and for N < p tasks, which have no bound."}}
fig, ax = plt.subplots(figsize=(6.5, 3.6))
plot_theorem6(ax, thm.runs, f"Theorem 6 on (4.17): n={cfg.thm_n}, p={cfg.thm_p}")
plt.show()

# %%
eps64, K, n_c = np.finfo(float).eps, cfg.thm_steps, big.n_compared
run.claim("Thm 6: B* = (X'X)^-1/2 gives l_total = l* (to 1e-9 relative)", abs(exact_gap) < 1e-9 * l_star,
          kind="math", thesis="(4.21): l_total(B*) = l*",
          ours=f"l_total(B*) - l* = {exact_gap:.1e} (l* = {l_star:.2f}; float64 resolves ~{64 * eps64 * l_star:.0e})")
floor_text = (f"; at the other {K - n_c} the bound is below the float64 floor ({np.sqrt(big.floor):.0e} in "
              f"distance) and the distance left the floor at {big.n_off_floor}" if n_c < K else "")
run.claim("Thm 6: meta-GD converges linearly to B* (bound at every meta-step above the float64 floor)",
          big.bound_ok, kind="math",
          thesis="linear rate, ||B_k - B*||^2 <= (1 - mu/L)^k ||B_0 - B*||^2, when the Z_i span R^p",
          ours=f"bound compared at {n_c} of {K} meta-steps, exceeded at {big.n_exceeded}{floor_text}; "
               f"mu/L = {big.mu_over_L:.1e}; ||B_K - B*|| = {big.dist:.1e}; new-task gap {big.target_gap:.1e}")
run.claim("Thm 6 without the span condition: l_total - l* falls > 1e3x, B_K stays > ||B_0 - B*||/4 from B*",
          few_fell and few_away, kind="math", thesis="needs {Z_i} to span R^p (N >= p)",
          ours=f"N = {cfg.thm_few_tasks} < p = {cfg.thm_p}: training gap {few.train_gap0:.1e} -> {few.train_gap:.1e}; "
               f"||B_K - B*|| / ||B_0 - B*|| = {few.dist / few.dist0:.2f}; "
               f"new-task gap {few.target_gap0:.1e} -> {few.target_gap:.1e}")
run.claim("Thm 6 does not cover normalized gradients: the best fixed B leaves a new-task gap > 1", norm_gap > 1,
          kind="math", thesis="(not discussed; the experiments normalize)",
          ours=f"best fixed B for normalized gradients: new-task gap {norm_gap:.1f} (l* = {l_star:.1f})")
_ = run.metric("theorem6/target_gap_normalized", norm_gap)

# %%
held_txt = (f"stays below the bound at all {n_c} meta-steps where float64 can tell them apart" if big.n_exceeded == 0
            else f"exceeds the bound at {big.n_exceeded} of the {n_c} meta-steps where float64 can tell them apart")
display(Markdown(
    f"In this run the squared distance {held_txt}"
    + (f" (from step {n_c + 1} on the bound is below the floor, and the distance "
       + ("stays below it" if big.n_off_floor == 0 else f"rises above it at {big.n_off_floor} steps")
       + f", ending at {big.dist:.0e})" if n_c < K else "")
    + f". With $N < p$ the training gap fell from {few.train_gap0:.1e} to {few.train_gap:.1e}, while $B$ ended "
    f"at {few.dist / few.dist0:.2f} of its initial distance from $B^*$ and the one-step gap on new tasks went "
    f"from {few.target_gap0:.1e} to {few.target_gap:.1e}."))

# %% [markdown]
# The bound is loose by design: it contracts the *squared* distance by $1-\mu/L$ per step, while gradient descent
# on a quadratic contracts the distance itself by at least that factor, so the measured curve can fall up to twice
# as fast on the log scale. With $N < p$ every matrix that agrees with $B^*$ on the span of the $G_i$ is a
# minimizer too, so meta-training can only fix $B$ on that span and leaves the rest where $B_0$ put it. The theorem
# is clean, but it describes a setting the experiments leave: they normalize gradients, use RMSProp instead of
# gradient descent as MetaOpt, and draw a new design $X$ for every task.
#
# ## 5. Experiments: DCO against tuned baselines
#
# **Protocol.** For each family we draw three disjoint sets of tasks: meta-training tasks for the DCO rules, tuning
# tasks on which each baseline's learning rate is chosen (a log grid, the one with the lowest mean validation
# loss after 30 steps), and held-out tasks on which everything is reported. A step is one full-batch step on the
# task's training loss (the thesis's "epoch"). DCO rules start from gradient-descent-like constants: $\Lambda_0 =
# 1$ (a unit step along the normalized gradient), $M_0 = 0.1$, $B_0 = I$ for least squares; for the networks a
# step of $0.1$ ($\Lambda_0 = \sqrt{10}$, $B_0 = 0.1 I$). $S^{(1)} = 0$ and $\theta^{(1)} = 0$ for least squares;
# networks start from a uniform fan-in initialization, the same for every method.
#
# ### Least squares (Figure 4.1)
#
# Tasks (4.22): $\min_{\theta \in \mathbb R^{100}} \|X\theta - y\|^2$ with a fresh $X \in \mathbb R^{100\times 100}$
# and $y$ of standard normal entries per task; $l_i^{\mathrm{val}} = l_i$; 100 meta-training tasks, $M = 20$,
# 100 held-out tasks followed for 30 steps. At `book` scale the whole comparison (fresh meta-training, tuning and
# held-out tasks) is repeated for three experiment seeds; the thesis does not say how many it used. The claim, fixed
# before the chapter was run on fresh seeds: at the *worst* of the three seeds, persistent DCOM's held-out loss
# after 30 steps is below 0.8 times the best tuned baseline's. 0.8 asks for a clear win (the line that the verdicts
# at the end of the chapter also use) and leaves a margin over the ratios that the development seeds gave.

# %%
if run.scale == "full":  # the sweep's runs, one per seed (see "At the thesis's scale")
    ls_results = collect(run.sweep_results(), "least-squares", run.seeds(cfg.ls_n_seeds, 100))
else:
    ls_rules = dco_rules(lam0=cfg.lam0, b0=cfg.b0, m0=cfg.m0, backend=cfg.backend)
    ls_counts = (cfg.ls_train_tasks, cfg.ls_tune_tasks, cfg.ls_eval_tasks)
    ls_results = []
    for i in range(cfg.ls_n_seeds):
        draw = partial(least_squares_tasks, p=cfg.ls_p, n=cfg.ls_n, generator=run.generator_for(100 + i), device=dev)
        ls_results.append(compare_on_family(draw, ls_counts, ls_rules, cfg.ls_lrs, cfg.ls_epochs, cfg.eval_steps))

# %% mystnb={"image": {"alt": "Mean loss on held-out least-squares tasks, log scale, over 30 inner steps for six DCO rules (solid; persistent ones bold) and tuned SGD, Adam and RMSProp (dashed); the table and the text below say which ends lowest in this run."}, "figure": {"caption": "Least squares (p = 100), first seed: held-out loss of the meta-trained DCO rules, with and without carrying the task state across meta-epochs, against SGD, Adam and RMSProp with tuned learning rates.", "name": "fig-dco-least-squares"}}
fig, ax = plt.subplots(figsize=(7, 4.2))
plot_curves(ax, ls_results[0].curves, f"least squares, p = {cfg.ls_p}: {cfg.ls_eval_tasks} held-out tasks",
            "mean loss $\\|X\\theta - y\\|^2$")
ax.legend(fontsize=8, ncol=2)
plt.show()

# %%
ls_final = final_losses(ls_results)
# DCOGD (reset): the one-step loss it was trained on, on its own tasks and on new ones (Section 6 uses this)
gd_train_1 = np.mean([r.train_losses[("DCOGD", False)][-1] for r in ls_results])
gd_held_1 = np.mean([float(r.curves["DCOGD (reset)"][1]) for r in ls_results])
print(f"DCOGD (reset), one-step loss: {gd_train_1:.1f} on its training tasks (last meta-step), "
      f"{gd_held_1:.1f} on held-out tasks; start {float(ls_results[0].curves['DCOGD (reset)'][0]):.1f}")
run.table([{"method": k, "step-30 loss, mean over seeds": float(np.mean(v)),
            "per seed": ", ".join(f"{x:.2f}" for x in v)} for k, v in ls_final.items()], floatfmt=".2f")

# %%
base_keys, k = list(BASELINES), cfg.ls_n_seeds
best = [min(ls_final[b][i] for b in base_keys) for i in range(k)]
best_base = [min(base_keys, key=lambda b, i=i: ls_final[b][i]) for i in range(k)]
rule_ratios = {m: [v[i] / best[i] for i in range(k)] for m, v in ls_final.items() if m.startswith("DCO")}
ratios = rule_ratios["DCOM (persistent)"]
run.metric("ls/dcom_persistent_step30", ls_final["DCOM (persistent)"][0])
run.metric("ls/best_baseline_step30", best[0])
ls_win = run.claim(
    f"worst of {k} seed{'s' * (k > 1)}: persistent DCOM's step-30 LS loss < 0.8x the best tuned baseline",
    max(ratios) < 0.8, kind="empirical", value=max(ratios), min_scale="book",
    thesis="'DCO optimizers exhibit substantially faster convergence' (Fig. 4.1; no numbers printed)",
    ours="step-30 loss / best tuned baseline: " + ", ".join(f"{r:.2f} (vs {b})" for r, b in zip(ratios, best_base)))
others = [m for m, r in rule_ratios.items() if max(r) < 0.8 and m != "DCOM (persistent)"]
display(Markdown(("Persistent DCOM wins at every seed, as claimed" if ls_win else
                  f"Persistent DCOM does **not** win at every seed of this run (worst ratio {max(ratios):.2f})")
                 + f". Other DCO variants below 0.8x the best baseline at every seed: {', '.join(others) or 'none'}."))
run.table([{"DCO rule": m, "worst seed": max(r), "median over seeds": float(np.median(r)),
            "per seed": ", ".join(f"{x:.2f}" for x in r)} for m, r in rule_ratios.items()], floatfmt=".2f")

# %% [markdown]
# The table gives each DCO rule's step-30 loss over the best tuned baseline's, seed by seed
# ({numref}`Figure %s <fig-dco-least-squares>` shows the first seed). Persistent DCOM learns, per weight, a step
# length and an averaging constant, on trajectories that reach deep into the 30-step horizon it is evaluated on.
# Section 6 explains what handicaps the other variants; the short version is that the printed protocol (reset,
# $T = 1$) trains each rule for the *first* step from $\theta = 0$ only, and that DCOGD's $10^4$ free entries have
# nothing to learn here.
#
# ### System identification (Figure 4.2) and smooth interpolation (Figure 4.3)
#
# Beverton-Holt tasks (4.23): $n_{t+1} = R_0 n_t / (K + n_t) + d$, $R_0, K \sim \mathcal U(1, 2)$,
# $n \sim \mathcal U(0, 10)$, noise $d$ with standard deviation 0.1 (the thesis writes $\mathcal N(0, 0.1)$ and
# defines its second argument as a standard deviation), fitted by a 1-5-5-1 tanh network ($p = 46$) on 500 points
# and validated by MSE on 100. Interpolation tasks (4.24): $g(x) = a\cos(bx)e^{-c|x|}$ with $a, b, c \sim
# \mathcal U(0,1)$ on $x \sim \mathcal U(-5, 5)$ (the thesis gives no range), fitted by a 1-10-10-1 network
# ($p = 141$). We report both on 100 held-out tasks at `book` scale (the thesis averages interpolation over 10,
# which the `full` scale follows), for one experiment seed per family, and assert nothing about them: the digest's
# prototype found the outcome sensitive to choices the thesis does not state (below).

# %%
net_rules = dco_rules(lam0=cfg.net_lam0, b0=cfg.net_b0, m0=cfg.m0, backend=cfg.backend)
net_results = {}
for label, family, off, n_held, experiment in (  # held-out tasks: 100 and 10 at full, as in the thesis
        ("system identification (Beverton-Holt)", beverton_holt_tasks, 200, cfg.net_eval_tasks, "system-id"),
        ("smooth interpolation", interpolation_tasks, 300, cfg.interp_eval_tasks, "interpolation")):
    if run.scale == "full":  # the sweep's run of this family
        (net_results[label],) = collect(run.sweep_results(), experiment, run.seeds(1, off))
        continue
    g = run.generator_for(off)
    draw = partial(family, n_train=cfg.net_train_points, n_val=cfg.net_val_points, generator=g, device=dev)
    net_results[label] = compare_on_family(draw, (cfg.net_train_tasks, cfg.net_tune_tasks, n_held), net_rules,
                                           cfg.net_lrs, cfg.net_epochs, cfg.eval_steps, init_generator=g)

# %% mystnb={"image": {"alt": "Two panels of mean validation MSE (log scale) over 30 inner steps, for Beverton-Holt system identification (left) and smooth interpolation (right), with six DCO rules (solid) and three tuned baselines (dashed); the tables below say which ends lowest in this run."}}
fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
for ax, (label, res) in zip(axes, net_results.items()):
    plot_curves(ax, res.curves, label, "mean validation MSE")
fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=5, fontsize=8)
plt.tight_layout(rect=(0, 0.1, 1, 1))
plt.show()

# %%
net_final = {label: final_losses([res]) for label, res in net_results.items()}
for lab, fin in net_final.items():
    key = "sysid" if lab.startswith("system") else "interp"
    run.metric(f"{key}/dcom_persistent_step30", fin["DCOM (persistent)"][0])
    run.metric(f"{key}/best_baseline_step30", min(fin[b][0] for b in base_keys))
display(run.table(network_rows(net_results), floatfmt=".4f"))
net_summary = network_summary(net_results)
net_wins = [row["task"] for row in net_summary if row["verdict"].endswith("(wins)")]
display(Markdown("The thesis's claim for the network tasks (\"the DCO optimizers continue to outperform "
                 "baselines\") " + (f"holds in this run on: {', '.join(net_wins)}" if net_wins else
                                     "does not carry over to this run: no DCO rule ends below 0.8x the best tuned "
                                     "baseline on either family") + "."))
run.table(net_summary)

# %% [markdown]
# The first table gives every method's held-out MSE after 30 steps, and every rule at its starting point
# $\phi_0$ (the last rows); the second puts each family's best DCO rule against the best tuned baseline (the same
# 0.8x line as the least-squares claim) and each persistent rule against itself at $\phi_0$: a ratio below 1 means
# that meta-training helped the rule, above 1 that it made it worse. These numbers come from one seed and are
# sensitive to choices the thesis does not state (the initial step, reset or persistent, the network's activation
# and initialization, the x range), so we show them and assert nothing about them.
#
# ## 6. Pitfalls
#
# **A one-step horizon cannot see instability.** With $T = 1$ the meta-objective scores exactly one step.
# Whether that step, *repeated*, converges, i.e. whether the iteration matrix $I - 2BX^\top X$ of DCOGD on least
# squares has spectral radius below 1, is invisible to it. A fixed design with $\kappa(X^\top X) = 10^3$ and a
# rotated (non-diagonal) Hessian shows it: random targets, unnormalized gradients, RMSProp on $B$ from a safe
# gradient step $B_0 = I / (2\lambda_{\max})$.

# %% mystnb={"image": {"alt": "Two panels against meta-steps, log scale: left, the held-out loss after one step of the learned rule; right, the spectral radius of the repeated step, with a dashed stability line at 1. The text below the figure counts the meta-steps that improve the one-step loss while the radius is above 1.1."}}
pit = one_step_horizon_pitfall(cfg.pit_n, cfg.pit_p, cfg.pit_kappa, cfg.pit_tasks, cfg.pit_meta_lr, cfg.pit_steps,
                               generator=run.generator_for(400))
RHO_BAD = 1.1  # 1.1^30 = 17: the error along that eigenvector grows 17-fold over a 30-step run
unstable = pit.unstable(RHO_BAD)
worst_k = int(np.argmax(np.where(unstable, pit.radius, 0)))
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
plot_horizon_pitfall(ax1, ax2, pit)
plt.tight_layout()
plt.show()
n_bad, last = int(unstable.sum()), pit.radius[-1]
display(Markdown(
    (f"{n_bad} of the {cfg.pit_steps} meta-steps are rules that the $T = 1$ objective rates better than the start "
     f"({pit.one_step[0]:.1f}) and whose repeated step blows up (radius > {RHO_BAD}); the largest radius among them "
     f"is {pit.radius[worst_k]:.2f}, at a one-step loss of {pit.one_step[worst_k]:.1f} (optimum {pit.l_star:.1f})."
     if n_bad else f"In this run no meta-step combined a one-step loss below the start with a radius above {RHO_BAD}: "
     "the pitfall did not show at this seed.")
    + f" Meta-training ends at a one-step loss of {pit.one_step[-1]:.1f} and a radius of {last:.2f}, a rule that "
    + ("diverges when repeated." if last > 1 else "happens to converge when repeated.")))

# %% [markdown]
# Every meta-step counted above is a rule that the $T = 1$ objective rates as an improvement and that blows up when
# applied 30 times (a radius $\rho$ multiplies the error along its eigenvector by $\rho$ per step, so $\rho = 1.1$
# means a factor 17 over 30 steps). Whether meta-training happens to stop at such a point is luck. RMSProp makes the excursions likely, because it moves every entry of $B$ by roughly its
# learning rate whatever that entry's curvature, and $X^\top X$ amplifies an error along its stiff directions by up
# to $10^3$. Remark 13's advice, a horizon that grows with the difficulty of the landscape, is the remedy; $T = 1$,
# which all the thesis's experiments use, is the setting where it matters most.
#
# **An isotropic family leaves DCOGD nothing to learn.** In (4.22) $X$ and $y$ have i.i.d. Gaussian entries, so the
# task distribution is invariant under rotations of $\theta$: if $B$ is a good rule, so is $QBQ^\top$ for every
# orthogonal $Q$, and averaging over $Q$ shows that the best *fixed* rule is a multiple of the identity, plain
# gradient descent. Everything DCOGD's $10^4$ entries can learn beyond one step size is fitted to the 100 training
# tasks. The reset runs test it: if DCOGD has fitted its training tasks, the one-step loss it was trained on is
# lower on its own 100 tasks than on new ones. DCOG (per-weight step sizes) is in the same position, since no
# coordinate is special either.

# %%
ls_mean = {m: float(np.mean(v)) for m, v in ls_final.items()}
rank = sorted(ls_mean, key=ls_mean.get, reverse=True).index("DCOGD (reset)") + 1
display(Markdown(f"In this run DCOGD (reset)'s one-step loss is {gd_train_1:.1f} on its own training tasks and "
                 f"{gd_held_1:.1f} on new ones ({gd_held_1 / gd_train_1:.1f}x); its step-30 held-out loss, "
                 f"{ls_mean['DCOGD (reset)']:.1f} (mean over seeds), ranks {rank} of the {len(ls_mean)} methods "
                 "counted from the worst."))

# %% [markdown]
#
# **Reset versus persistent.** With reset and $T = 1$, every meta-step scores the first step from $\theta = 0$ only,
# so the rules learn an excellent first step and nothing about steps 2 to 30. For DCOM it is worse: with
# $S^{(1)} = 0$ the first step is $-M\odot \hat G/\Lambda^2$, so only the ratio $M/\Lambda^2$ is identified and the
# averaging constant is never trained as an average. Carrying $\theta$ and $S$ across meta-epochs trains the rule
# on the whole trajectory, which is why we expect persistent DCOM to be the strongest rule in Section 5.
#
# ## 7. What the convex-program path costs
#
# Each DCO step through cvxpylayers canonicalizes the batch of QPs, calls SCS once per task, and in the backward
# pass solves one adjoint system per task. The closed form is one elementwise expression. We time one full-batch
# meta-step of DCOM with $T = 1$ at the least-squares size $p = 100$, both backends, repeats interleaved.

# %%
g = run.generator_for(500)
cost_tasks = least_squares_tasks(cfg.cost_tasks, p=cfg.cost_p, n=cfg.cost_p, generator=g, device=dev)
secs = meta_step_seconds({"closed form": DCOMomentum(cfg.cost_p, backend="closed_form"),
                          "cvxpylayers": DCOMomentum(cfg.cost_p, backend="cvxpylayers")},
                         cost_tasks, repeats=cfg.cost_repeats)
med = {k: float(np.median(v)) for k, v in secs.items()}
print(f"one meta-step, DCOM, p = {cfg.cost_p}, {cfg.cost_tasks} tasks: closed form {1e3 * med['closed form']:.2f} ms, "
      f"cvxpylayers {1e3 * med['cvxpylayers']:.0f} ms, ratio {med['cvxpylayers'] / med['closed form']:.0f}x")

# %% [markdown]
# The ratio above is wall-clock time on the machine that ran this page, measured and never asserted: it depends on
# the machine, its load and the number of tasks. Where it comes from does not: the layer canonicalizes, solves and
# differentiates one conic program per task, where the closed form is a few elementwise tensor operations (which
# also run on a GPU; diffcp does not). The program buys generality (constraints, non-quadratic
# objectives), but for the unconstrained QPs of this chapter it is the same function computed slowly.
# {doc}`../04-scq/scq` runs into the same cost with a constrained program and also trains without the conic
# solver, but its cheaper substitute (a ridge solve and a simplex projection) is a relaxation, not the same
# function.
# `tests/benchmarks/bench_dco.py` measures the same ratio.
#
# ## What did not reproduce
#
# The thesis's three experimental claims, against this run's held-out numbers (least squares: mean over the seeds
# above; network tasks: one seed). "Best baseline" is the best of SGD, Adam and RMSProp, each with its tuned
# learning rate; a DCO rule "wins" below 0.8x, is "about even" below 1.1x, and "loses" above.

# %%
verdicts = verdict_rows(ls_final, net_final)
wins = [f"{v['DCO rule']} on {v['task']}" for v in verdicts if v["verdict"].endswith("(wins)")]
n_lose = sum(v["verdict"].endswith("(loses)") for v in verdicts)
display(Markdown(f"Wins in this run: {', '.join(wins) or 'none'}. All {len(verdicts)} comparisons of a DCO rule "
                 f"with the best tuned baseline: {len(wins)} win, {len(verdicts) - len(wins) - n_lose} about even, "
                 f"{n_lose} lose."))
run.table(verdicts)

# %% [markdown]
# The course's digest of the thesis describes an independent CPU prototype with the same questions and found
# persistent DCOM the only DCO rule ahead of the tuned baselines on least squares, DCOG and DCOGD behind, and tuned
# RMSProp or Adam ahead on the network tasks; compare the table above. Two caveats on our side: our baselines are
# tuned on separate tasks with a quarter-decade grid, and the thesis's unstated choices (initial constants, reset
# or persistent, network details) are ours.
#
# ## At the thesis's scale
#
# The `full` scale is the thesis's protocol (Section 4.6): the cvxpylayers backend, 100 meta-training tasks,
# $M = 20$, $T = 1$, RMSProp defaults, 30 evaluation steps, least squares on 100 held-out tasks (Fig. 4.1),
# system identification on 100 (Fig. 4.2) and interpolation on 10 (Fig. 4.3), plus five least-squares seeds
# derived from `SEED` like every other draw. Its comparisons of Section 5 run as a resumable sweep, one run per
# task family and seed, each checkpointed after every phase and every few meta-steps:
#
# ```
# python -m effcourse.sweep run 03-dco --out results     # add --only 'least-squares/*' to run a part
# EFFCOURSE_RESULTS=results python -m effcourse.book.notebooks execute 03-dco --scale full
# ```
#
# At `full` the notebook reads those runs (`effcourse.dco.sweep.collect`) instead of training inline, and runs the
# cheap sections (1, 2, 4, 6, 7 and the exercises) as they are. The runs:

# %%
full_sweep = Sweep("03-dco", seed=SEED)
per_exp = Counter(s.experiment for s in full_sweep.specs)
n_qp = sum(qp_solves(s, full_sweep.cfg) for s in full_sweep.specs)
qp_hours = n_qp * med["cvxpylayers"] / cfg.cost_tasks / 3600  # Section 7's seconds per QP, forward and backward
display(Markdown(
    f"{len(full_sweep.specs)} runs ({', '.join(f'{n} {e}' for e, n in per_exp.items())}): "
    f"{full_sweep.gpu_hours():.1e} GPU-hours by the FLOPs of the inner problems on one H100-class GPU, i.e. "
    f"nothing. What takes time is the {n_qp:,} convex programs that cvxpylayers solves and differentiates on the "
    f"CPU: about {qp_hours:.1g} CPU-hours at the cost per program that Section 7 measured on this machine."))

# %% [markdown]
# The `book` scale departs from that protocol in three ways, all stated above: the closed form instead of
# cvxpylayers (the same function, Section 2), three least-squares seeds, and 100 held-out interpolation tasks where
# the thesis used 10. The thesis reports these experiments only as curves in Figures 4.1-4.3, whose images are not
# in the text we work from, so there are no printed numbers to compare against: what the thesis expects is an
# ordering, DCO "substantially faster" than the tuned baselines on least squares and better on the two network
# tasks. At `full` the least-squares claim of Section 5 is asserted at the worst of five seeds, and each network
# family adds a claim with the thesis's ordering as its criterion (no tolerance: the best DCO rule's held-out loss
# at the last step must be below the best tuned baseline's). Those two are reported, not asserted: one seed per
# family, as in the thesis, and the digest's prototype found the tuned baselines ahead.

# %%
if run.scale == "full":
    for lab, fin in net_final.items():
        nb = min(fin[b][0] for b in base_keys)
        best_rule = min((m for m in fin if m.startswith("DCO")), key=lambda m, fin=fin: fin[m][0])
        run.claim(f"full, {lab}: the best DCO rule ends below the best tuned baseline", fin[best_rule][0] < nb,
                  kind="empirical", value=fin[best_rule][0] / nb, min_scale="full", assert_claim=False,
                  thesis="'The DCO optimizers continue to outperform baselines' (Figs. 4.2-4.3; no numbers printed)",
                  ours=f"{best_rule}: held-out MSE {fin[best_rule][0]:.4f} vs {nb:.4f} after {cfg.eval_steps} steps")

# %% [markdown]
# Where this chapter departs from the thesis, listed once as `DEVIATIONS` in `effcourse/dco/config.py`
# (the reproduction report lists the same entries):

# %%
run.deviations_table()

# %% [markdown]
# ## Exercises
#
# Each exercise changes one thing in the programs of this chapter and asks what the equations predict. Every
# solution is a short cell on `effcourse.dco` whose asserts check the prediction; none depends on the seed.
#
# ```{exercise} Scaling the one-step rule of Theorem 6
# :label: ch03-newton-scale
#
# Section 4's optimal rule is $B^* = \tfrac12 (X^\top X)^{-1}$. On the shifted family (4.17), with unnormalized
# gradients, take one DCOGD step with $B = c\,B^*$ from random starts $\theta_i^{(1)}$, for $c = \tfrac12, 1, 2, 3$.
# Predict the ratio of each task's gap after the step, $l_i(\theta_i^{(2)}) - l^*$, to its gap before the step, and
# say what the step does at $c = 2$.
# ```
#
# ```{solution-start} ch03-newton-scale
# :class: dropdown
# ```
#
# With $\theta_i^\star = \theta' + \Delta_i$ the minimizer of task $i$, $G_i = 2X^\top X(\theta_i^{(1)} -
# \theta_i^\star)$, so $B^*G_i = \theta_i^{(1)} - \theta_i^\star$ and $\theta_i^{(2)} - \theta_i^\star = (1 - c)
# (\theta_i^{(1)} - \theta_i^\star)$. A least-squares gap is the quadratic $l_i(\theta) - l^* = \|X(\theta -
# \theta_i^\star)\|^2$ (the residual $X\theta' - y$ is orthogonal to the range of $X$), so every task's gap is
# multiplied by exactly $(1 - c)^2$: a quarter at $c = \tfrac12$, zero at $c = 1$ (Theorem 6's rule), unchanged at
# $c = 2$, where the step carries each iterate to its mirror image through the minimizer, and four times larger at
# $c = 3$. The cell draws a design of Section 4's size and 50 tasks, and checks every ratio against $(1 - c)^2$ to
# $10^{-9}$.

# %%
from effcourse.dco.layers import DCOGeneralDescent
from effcourse.dco.tasks import shifted_least_squares_tasks
from effcourse.dco.theory import optimal_general_descent, optimal_value

gen_ex = run.generator_for(600)
X_ex, y_ex = torch.randn(cfg.thm_n, cfg.thm_p, generator=gen_ex), torch.randn(cfg.thm_n, generator=gen_ex)
shifted_ex = shifted_least_squares_tasks(X_ex, y_ex, torch.randn(50, cfg.thm_p, generator=gen_ex))
theta_ex = torch.randn(50, cfg.thm_p, generator=gen_ex)  # theta^(1), one per task
B_star_ex, l_star_ex = optimal_general_descent(X_ex), optimal_value(X_ex, y_ex)
gap_before = shifted_ex.loss(theta_ex) - l_star_ex
for c in (0.5, 1.0, 2.0, 3.0):
    scaled = DCOGeneralDescent(cfg.thm_p, normalize=False)
    with torch.no_grad():
        scaled.B.copy_(c * B_star_ex)
        ratio = (shifted_ex.loss(scaled(theta_ex, shifted_ex.grad(theta_ex))[0]) - l_star_ex) / gap_before
    dev_c = float((ratio - (1 - c) ** 2).abs().max())
    print(f"B = {c:.1f} B*: gap after / gap before, mean over {len(ratio)} tasks {abs(float(ratio.mean())):.4f}; "
          f"(1 - c)^2 = {(1 - c) ** 2:.2f}; largest deviation {dev_c:.0e}")
    assert dev_c < 1e-9, f"expected every task's gap ratio to be (1 - c)^2 = {(1 - c) ** 2} at c = {c}"

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise} The edge of stability of a fixed step
# :label: ch03-stability-edge
#
# Section 6's pitfall turns on the spectral radius of the repeated step. Take plain gradient descent written as
# DCOGD, $B = bI$ with unnormalized gradients, on 20 least-squares tasks that share one design $X$ of Section 6's
# size. For which $b$ does the repeated step converge? Run 200 steps at $b = 0.95/\lambda_{\max}(X^\top X)$ and at
# $b = 1.05/\lambda_{\max}$, and compare the loss after one step with the loss after 200.
# ```
#
# ```{solution-start} ch03-stability-edge
# :class: dropdown
# ```
#
# A task's error $e = \theta - \theta^\star$ obeys $e \mapsto (I - 2bX^\top X)\,e$, whose eigenvalues are
# $1 - 2b\lambda_j$; the largest in magnitude is below 1 exactly when $0 < b < 1/\lambda_{\max}$. At
# $0.95/\lambda_{\max}$ the radius is $0.9$, every component of the error shrinks, and the loss
# $l^* + \sum_j \lambda_j e_j^2$ (in the eigenbasis of $X^\top X$) can never rise. At $1.05/\lambda_{\max}$ the
# radius is $1.1$, Section 6's `RHO_BAD`: the stiffest component's share of the loss grows by $1.1^2$ per step,
# $1.1^{400} \approx 4\cdot10^{16}$ over 200 steps. The cell checks that the first curve never rises and that the
# second ends more than $10^6$ times above its start. Compare also the two one-step losses it prints: they are all
# that a $T = 1$ meta-objective sees of the two rules, and a change of $b$ by a tenth separates a rule that converges
# from one that explodes.

# %%
from effcourse.dco.meta import evaluate_optimizer
from effcourse.dco.tasks import LeastSquaresTasks

gen_ex = run.generator_for(601)
X_ex = torch.randn(cfg.pit_n, cfg.pit_p, generator=gen_ex)
fixed_ex = LeastSquaresTasks(X_ex, torch.randn(20, cfg.pit_n, generator=gen_ex))  # 20 tasks, one design
lam_max_ex = float(torch.linalg.eigvalsh(X_ex.T @ X_ex)[-1])
for f in (0.95, 1.05):
    gd_ex = DCOGeneralDescent(cfg.pit_p, b0=f / lam_max_ex, normalize=False)  # B = b I: gradient descent
    curve = evaluate_optimizer(gd_ex, fixed_ex, 200)
    print(f"b = {f:.2f} / lambda_max: radius |1 - 2 b lambda_max| = {abs(1 - 2 * f):.2f}; loss / start after "
          f"1 step {float(curve[1] / curve[0]):.3f}, after 200 steps {float(curve[-1] / curve[0]):.3g}")
    if f < 1:
        assert bool((curve[1:] <= curve[:-1] * (1 + 1e-12)).all()), "expected a loss that never rises"
    else:
        assert float(curve[-1] / curve[0]) > 1e6, "expected the loss to grow more than 1e6-fold"

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise} Why DCOG with normalized gradients never settles
# :label: ch03-normalized-steps
#
# The experiments divide each gradient by its norm before it enters the program. Show that DCOG then moves every
# iterate by a distance between $1/\max_j\Lambda_j^2$ and $1/\min_j\Lambda_j^2$ per step, whatever the loss, and
# conclude that no DCOG rule with a fixed $\Lambda$ converges to a minimizer. Check it on small, well-conditioned
# least-squares tasks ($p = 5$, $n = 40$) with $\Lambda_j$ drawn from $[2, 3]$, following each task's distance to
# its minimizer for 60 steps.
# ```
#
# ```{solution-start} ch03-normalized-steps
# :class: dropdown
# ```
#
# The step is $\hat G \oslash \Lambda^2$ with $\|\hat G\| = 1$, so its length lies between $1/\max_j\Lambda_j^2$ and
# $1/\min_j\Lambda_j^2$ however close the iterate is to the minimizer: normalizing removes the factor by which a
# gradient shrinks near a minimum. By the triangle inequality, two consecutive iterates cannot both lie within
# $1/(2\max_j\Lambda_j^2)$ of the minimizer, so the iterates circle it and the loss stays above the optimum. The
# same fact is behind check (iv) of Section 4: with normalized gradients not even the best fixed $B$ solves a new
# task. The cell checks the step lengths to $10^{-12}$ and the distance bound at every step, and prints the loss
# after 60 steps over the optimal loss. A rule can slow down near a minimum only through its state: DCOM's $S'$
# averages unit vectors, and an average of gradients that keep flipping direction is short.

# %%
from effcourse.dco.layers import DCOGradient

gen_ex = run.generator_for(602)
small_ex = least_squares_tasks(20, p=5, n=40, generator=gen_ex)
dcog_ex = DCOGradient(5)  # normalized gradients, as in the experiments
with torch.no_grad():
    dcog_ex.lam.copy_(2 + torch.rand(5, generator=gen_ex))  # Lambda_j in [2, 3]
inv_lam2 = 1 / dcog_ex.effective_lam().detach() ** 2
lo_ex, hi_ex = float(inv_lam2.min()), float(inv_lam2.max())
minimizer_ex = torch.linalg.lstsq(small_ex.X, small_ex.y.unsqueeze(-1)).solution.squeeze(-1)
theta_ex, dists, lengths = small_ex.init_params(), [], []
with torch.no_grad():
    for _ in range(60):
        dists.append((theta_ex - minimizer_ex).norm(dim=1))
        nxt, _ = dcog_ex(theta_ex, small_ex.grad(theta_ex))
        lengths.append((nxt - theta_ex).norm(dim=1))
        theta_ex = nxt
dists, lengths = torch.stack(dists), torch.stack(lengths)
closest = float(torch.maximum(dists[1:], dists[:-1]).min())  # the nearest that two consecutive iterates get
excess = float((small_ex.loss(theta_ex) / small_ex.loss(minimizer_ex)).mean())
print(f"step lengths {float(lengths.min()):.3f} to {float(lengths.max()):.3f}, predicted [{lo_ex:.3f}, {hi_ex:.3f}]")
print(f"start {float(dists[0].mean()):.2f} from the minimizer; nearest consecutive pair {closest:.3f} "
      f">= {lo_ex / 2:.3f}; loss after 60 steps / optimal loss {excess:.3f}")
assert lo_ex * (1 - 1e-12) <= float(lengths.min()) and float(lengths.max()) <= hi_ex * (1 + 1e-12), \
    "expected every step length in [1/max Lambda^2, 1/min Lambda^2]"
assert closest >= lo_ex / 2 * (1 - 1e-12), "expected one of two consecutive iterates >= 1/(2 max Lambda^2) away"

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise} What reset with T = 1 cannot learn
# :label: ch03-reset-ratio
#
# Section 6 argues that with $S^{(1)} = 0$ the first DCOM step is $-M\odot\hat G/\Lambda^2$, so the reset protocol
# with $T = 1$ sees only the ratio $M/\Lambda^2$. Build DCOM at $(\Lambda, M) = (1, 0.1)$ and at $(\sqrt2, 0.2)$,
# which share that ratio, and show on least-squares tasks that their first steps agree. Then show that the
# meta-gradient of the one-step objective has no component along the direction that keeps every $M_j/\Lambda_j^2$
# fixed, and that the meta-gradient of a two-step objective ($T = 2$) has one.
# ```
#
# ```{solution-start} ch03-reset-ratio
# :class: dropdown
# ```
#
# Scaling $M_j$ by $e^t$ and $\Lambda_j$ by $e^{t/2}$ keeps $M_j/\Lambda_j^2$, hence the first step and the
# one-step loss, fixed; the derivative at $t = 0$, $M_j\,\partial l/\partial M_j + \tfrac12\Lambda_j\,\partial
# l/\partial\Lambda_j$, vanishes for every weight $j$. The objective is flat along that direction, so where
# meta-training ends along it is set by the meta-optimizer's own dynamics, not by the tasks, and $M$ is never
# trained as an averaging constant. At $T = 2$ the second step contains $(1 - M)\odot S^{(2)}$ with $S^{(2)} =
# M\odot\hat G^{(1)}$, a term that the scaling changes, so the two-step objective tells the rules apart; so do the
# persistent runs, whose meta-steps start from a state $S \neq 0$. The cell checks the first steps and the flat
# direction at $T = 1$ to $10^{-12}$, checks that $T = 2$ is not flat, and prints both rules' losses after 30
# steps: two different rules that the one-step objective scores alike.

# %%
from effcourse.dco.meta import unroll

gen_ex = run.generator_for(603)
ls_ex = least_squares_tasks(20, p=cfg.ls_p, n=cfg.ls_n, generator=gen_ex)
start_ex = ls_ex.init_params()
pair = [DCOMomentum(cfg.ls_p, lam0=1.0, m0=0.1), DCOMomentum(cfg.ls_p, lam0=2 ** 0.5, m0=0.2)]  # one M / Lambda^2
with torch.no_grad():
    first_gap = float((unroll(pair[0], ls_ex, start_ex, None, 1)[0]
                       - unroll(pair[1], ls_ex, start_ex, None, 1)[0]).abs().max())
print(f"first steps of the two rules differ by at most {first_gap:.1e}")
assert first_gap < 1e-12, "expected identical first steps"
rule = pair[0]
for horizon in (1, 2):  # reset protocol: every task starts from theta = 0, S = 0
    l_total = ls_ex.val_loss(unroll(rule, ls_ex, start_ex, None, horizon, create_graph=True)[0]).mean()
    g_lam, g_m = torch.autograd.grad(l_total, [rule.lam, rule.m])
    along = float((rule.m.detach() * g_m + 0.5 * rule.lam.detach() * g_lam).abs().max())
    print(f"T = {horizon}: largest derivative along the ratio-keeping direction {along:.1e} "
          f"(largest meta-gradient entry {float(torch.cat([g_lam, g_m]).abs().max()):.1e})")
    assert (along < 1e-12) == (horizon == 1), "expected a flat direction at T = 1 and not at T = 2"
print("held-out loss after 30 steps: " + ", ".join(f"{float(evaluate_optimizer(r, ls_ex, 30)[-1]):.2f}" for r in pair))

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ## Claims
#
# The table separates empirical claims, about training outcomes with their criterion over seeds in their name, from
# checks of the mathematics, identities and theorems checked up to a stated tolerance. An asserted row that fails
# stops the run, so on a built page every asserted row held; the least-squares row is asserted from the `book`
# scale on, where it has three seeds.

# %%
run.claims_table()
