"""Chapter 5 (soft parameter sharing) at three scales.  ``full`` is the thesis's CIFAR-10 protocol (Sec. 3.3).

Digits (smoke/book): a residual CNN with ``depth`` 3x3 layers of ``channels`` channels, unshared or sharing
``k`` templates, trained with the thesis's CIFAR recipe scaled down (SGD Nesterov 0.9, lr 0.1, x0.2 at 30/60/80 %
of the epochs, weight decay 5e-4 except on coefficients). Shortest paths: the Sec. 3.4.3 task on a smaller grid.

Seeds are counts, not lists: the chapter draws every experiment seed from its base ``SEED`` (``run.seeds``).
``n_seeds`` digits runs per variant that a claim or the fold needs (the first seed also trains every ``sweep_ks``),
``reg_n_seeds`` runs with the recurrence regularizer, ``path_n_seeds`` shortest-path runs per model.
``claim_ks``: template counts compared with the unshared net; ``asserted_ks``: those whose claim is asserted (on
digits one template's gap comes near the tolerance, so it is reported only).
"""

SMOKE = dict(
    dataset="digits", channels=16, depth=8, swrn_widen=0, dropout=0.0, augment=False,
    epochs=6, batch_size=64, lr=0.1, weight_decay=5e-4, milestones=[0.3, 0.6, 0.8], gamma=0.2,
    n_seeds=1, sweep_ks=[8, 4, 2, 1], claim_ks=[1, 2], asserted_ks=[2],
    reg_k=8, reg_lam=0.01, reg_epochs=6, reg_n_seeds=1,
    fold_k=2, fold_tau=0.95,
    path_size=12, path_train=200, path_test=100, path_phases=[2, 4], path_epochs=2, path_channels=8,
    path_depth=6, path_lr=0.01, path_lam=0.01, path_n_seeds=1, path_batch=64,
)

BOOK = dict(
    dataset="digits", channels=16, depth=8, swrn_widen=0, dropout=0.0, augment=False,
    epochs=30, batch_size=64, lr=0.1, weight_decay=5e-4, milestones=[0.3, 0.6, 0.8], gamma=0.2,
    n_seeds=5, sweep_ks=[8, 4, 2, 1], claim_ks=[1, 2], asserted_ks=[2],
    reg_k=8, reg_lam=0.01, reg_epochs=30, reg_n_seeds=5,
    fold_k=2, fold_tau=0.95,
    path_size=16, path_train=1000, path_test=300, path_phases=[2, 4, 6, 8, 10], path_epochs=5,
    path_channels=16, path_depth=10, path_lr=0.01, path_lam=0.01, path_n_seeds=3, path_batch=64,
)

# The thesis: SWRN-28-10-k on CIFAR-10 (crops and flips), 200 epochs, SGD Nesterov 0.9, lr 0.1 / 5 at 60, 120, 160,
# batch 128, weight decay 5e-4 except on alpha, 5 runs; shortest paths on 32x32 grids, 5 x 5,000 samples, 22-layer
# CNN with 32 channels, Adam 0.01, 50 epochs per phase. Needs a GPU and CIFAR-10 in $EFFCOURSE_DATA/cifar10.
FULL = dict(
    dataset="cifar10", channels=0, depth=28, swrn_widen=10, dropout=0.0, augment=True,
    epochs=200, batch_size=128, lr=0.1, weight_decay=5e-4, milestones=[0.3, 0.6, 0.8], gamma=0.2,
    n_seeds=5, sweep_ks=[6, 4, 2, 1], claim_ks=[1], asserted_ks=[1],
    reg_k=6, reg_lam=0.01, reg_epochs=200, reg_n_seeds=5,
    fold_k=4, fold_tau=0.95,
    path_size=32, path_train=5000, path_test=1000, path_phases=[2, 4, 6, 8, 10], path_epochs=50,
    path_channels=32, path_depth=20, path_lr=0.01, path_lam=0.01, path_n_seeds=3, path_batch=64,
)
