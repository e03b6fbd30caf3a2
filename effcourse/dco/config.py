"""Chapter 3 (DCO, Gautam 2024 ch. 4) at three scales.  ``full`` is the thesis's protocol (4.6), run through the
cvxpylayers backend; the thesis prints no numbers for it (its figures are missing from the text)."""

_LRS = [10 ** (k / 4) for k in range(-24, 5)]  # 1e-6 ... 10, quarter-decade steps (29 values)
_LRS_NET = [10 ** (k / 4) for k in range(-16, 5)]  # 1e-4 ... 10 (21 values)

SMOKE = dict(
    backend="closed_form",
    fidelity_p=12, fidelity_tasks=3,
    thm_n=20, thm_p=5, thm_tasks=50, thm_few_tasks=3, thm_target_tasks=200, thm_steps=5000,
    ls_p=100, ls_n=100, ls_train_tasks=100, ls_eval_tasks=100, ls_tune_tasks=100, ls_n_seeds=1,
    ls_epochs=20, eval_steps=30, ls_lrs=_LRS[::3], lam0=1.0, m0=0.1, b0=1.0,
    net_train_tasks=20, net_eval_tasks=20, net_tune_tasks=20, net_train_points=100, net_val_points=50,
    net_epochs=20, net_lam0=10 ** 0.5, net_b0=0.1, net_lrs=_LRS_NET[::4],
    pit_n=40, pit_p=20, pit_kappa=1e3, pit_tasks=100, pit_meta_lr=1e-4, pit_steps=600,
    cost_p=100, cost_tasks=2, cost_repeats=1,
)

BOOK = dict(
    backend="closed_form",
    fidelity_p=20, fidelity_tasks=4,
    thm_n=20, thm_p=5, thm_tasks=50, thm_few_tasks=3, thm_target_tasks=200, thm_steps=5000,
    ls_p=100, ls_n=100, ls_train_tasks=100, ls_eval_tasks=100, ls_tune_tasks=100, ls_n_seeds=3,
    ls_epochs=20, eval_steps=30, ls_lrs=_LRS, lam0=1.0, m0=0.1, b0=1.0,
    net_train_tasks=100, net_eval_tasks=100, net_tune_tasks=100, net_train_points=500, net_val_points=100,
    net_epochs=20, net_lam0=10 ** 0.5, net_b0=0.1, net_lrs=_LRS_NET,
    pit_n=40, pit_p=20, pit_kappa=1e3, pit_tasks=100, pit_meta_lr=1e-4, pit_steps=3000,
    cost_p=100, cost_tasks=10, cost_repeats=3,
)

# The thesis: every update solved by cvxpylayers on one CPU core; 100 meta-training tasks, M = 20, T = 1, RMSProp
# defaults; least squares evaluated on 100 new tasks for 30 epochs, sys-id on 100, interpolation on 10 tasks.
FULL = dict(
    BOOK,
    backend="cvxpylayers",
    ls_n_seeds=5, net_eval_tasks=100,
    cost_tasks=100, cost_repeats=5,
)
