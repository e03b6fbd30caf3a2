"""Chapter 8 (AvaGrad) at three scales.  ``full`` is the thesis's CIFAR-10 / WRN protocol (Savarese 2025, 6.3).

No seed lives here: the ``n_*`` keys are counts, and the chapter draws every seed from its base ``SEED`` through
``run.seeds``.  ``counter_runs`` is the number of independent sample sequences of the counterexample.
"""

_LRS_BOOK = [10 ** (k / 2) for k in range(-10, 7)]          # 1e-5 ... 1e3, half-decade steps (17 values)
_LRS_FULL = [m * 10.0 ** k for k in range(-7, 4) for m in (1, 5)][1:]  # 5e-7 ... 5e3 as printed (21 values)
_EPS_FULL = [m * 10.0 ** k for k in range(-8, 3) for m in (1, 5)][:21]  # 1e-8 ... 100 read as {1,5} x 10^k

SMOKE = dict(
    dataset="digits", model="mlp", hidden=128, batch_size=64, val_fraction=0.2,
    counter_steps=4_000, counter_runs=2, counter_lr=1e-4,
    limit_eps=[1.0, 1e2, 1e4], limit_steps=50, n_limit_seeds=2,
    grid_eps=[1e-4, 1.0, 100.0], grid_lrs=[1e-3, 1e-2, 1e-1, 1.0, 10.0], grid_epochs=2, n_grid_seeds=1,
    pitfall_eps=[1e-6, 1.0], compare_lrs=[1e-3, 1e-1], compare_epochs=2, n_compare_seeds=1,
    lr_milestones=[], weight_decay=0.0, widen=0, augment=False,
)

BOOK = dict(
    dataset="digits", model="mlp", hidden=128, batch_size=64, val_fraction=0.2,
    counter_steps=100_000, counter_runs=5, counter_lr=1e-4,
    limit_eps=[1.0, 1e2, 1e4], limit_steps=200, n_limit_seeds=5,
    grid_eps=[1e-8, 1e-6, 1e-4, 1e-2, 1.0, 100.0], grid_lrs=_LRS_BOOK, grid_epochs=15, n_grid_seeds=3,
    pitfall_eps=[1e-8, 1e-6, 1e-4, 1e-2, 1.0], compare_lrs=[10 ** (k / 2) for k in range(-8, 3)],
    compare_epochs=15, n_compare_seeds=3,
    lr_milestones=[], weight_decay=0.0, widen=0, augment=False,
)

# The thesis: tune (lr, eps) on WRN-28-4 with a 5,000-image validation split (21 x 21 grid), then train WRN-28-10
# for 200 epochs (lr / 5 at 60, 120, 160; wd 5e-4; batch 128; crops and flips).  Thousands of GPU-hours in all.
FULL = dict(
    dataset="cifar10", model="wrn", hidden=0, batch_size=128, val_fraction=0.1,
    counter_steps=1_000_000, counter_runs=10, counter_lr=1e-4,
    limit_eps=[1.0, 1e2, 1e4, 1e6], limit_steps=1000, n_limit_seeds=5,
    grid_eps=_EPS_FULL, grid_lrs=_LRS_FULL, grid_epochs=200, n_grid_seeds=1,
    pitfall_eps=[], compare_lrs=_LRS_FULL, compare_epochs=200, n_compare_seeds=3,
    lr_milestones=[60, 120, 160], weight_decay=5e-4, widen=10, augment=True,
)
