"""Chapter 6 (Continuous Sparsification) at three scales.  ``full`` is Savarese (2025), 4.3 (CIFAR-10, GPU).

``n_seeds`` counts the experiment seeds; the chapter derives them from its base seed (``run.seeds(n_seeds)``), so
no configuration fixes a seed.
"""

# One-shot pruning with CS: an s_init sweep at the thesis's lambda, and a lambda sweep at s_init = -0.1 (Fig. 4.10
# controls supermask sparsity the same way: "by varying s_init and lambda").
_CS_ONESHOT_BOOK = [(-0.1, 1e-8), (-0.2, 1e-8), (-0.3, 1e-8), (-0.35, 1e-8), (-0.4, 1e-8), (-0.45, 1e-8),
                    (-0.1, 3e-5), (-0.1, 1e-4), (-0.1, 2e-4), (-0.1, 4e-4), (-0.1, 8e-4), (-0.1, 1.6e-3)]

SMOKE = dict(
    dataset="digits", model="mlp", hidden=[256, 128], batch_size=64, lr=0.05, momentum=0.9, weight_decay=1e-4,
    milestones=[2 / 3, 5 / 6], n_seeds=1,
    # ticket search (Table 4.2 analogue)
    round_epochs=3, rewind_epoch=1, cs_rounds=2, cs_s_inits=[-0.3, 0.0], imp_rounds=3, impc_rounds=2,
    imp_rate=0.2, lam=1e-8, beta_final=200.0, mask_lr_mult=20.0,
    # one-shot pruning (Table 4.1 analogue)
    oneshot_epochs=3, finetune_epochs=2, finetune_lr=0.005, mp_sparsities=[0.9, 0.97],
    gmp_sparsities=[0.95], cs_oneshot=[(-0.3, 1e-8)],
    # hyperparameters (Figs 4.5-4.7 analogue), one round each
    hp_s_init=-0.1, hp_beta_finals=[50.0, 200.0], hp_lams=[0.0, 1e-4], hp_epochs=3,
    # supermasks (Figs 4.9-4.10 analogue): frozen weights
    sm_epochs=2, sm_lr=0.01, sm_cs_lams=[1e-8], sm_ss_s_inits=[1.0], sm_ss_lr=100.0,
)

BOOK = dict(
    dataset="digits", model="mlp", hidden=[256, 128], batch_size=64, lr=0.05, momentum=0.9, weight_decay=1e-4,
    milestones=[2 / 3, 5 / 6], n_seeds=3,
    round_epochs=20, rewind_epoch=2, cs_rounds=5, cs_s_inits=[-0.3, -0.2, -0.1, -0.05, 0.0, 0.05],
    imp_rounds=22, impc_rounds=22, imp_rate=0.2, lam=1e-8, beta_final=200.0, mask_lr_mult=20.0,
    oneshot_epochs=20, finetune_epochs=10, finetune_lr=0.005,
    mp_sparsities=[0.8, 0.85, 0.9, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99],
    gmp_sparsities=[0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.997, 0.999], cs_oneshot=_CS_ONESHOT_BOOK,
    hp_s_init=-0.1, hp_beta_finals=[25.0, 50.0, 100.0, 200.0, 500.0], hp_lams=[0.0, 1e-8, 1e-6, 1e-5, 1e-4],
    hp_epochs=20,
    sm_epochs=20, sm_lr=0.01, sm_cs_lams=[1e-8, 3e-5, 1e-4, 3e-4], sm_ss_s_inits=[0.0, 1.0, 2.0], sm_ss_lr=100.0,
)

# The thesis (4.3.3): ResNet-20 / VGG-16 on CIFAR-10; per round 85 epochs of SGD (lr 0.1, momentum 0.9, batch 128
# for ResNet / 64 for VGG, lr / 10 at epochs 56 and 71, weight decay 1e-4 on weights only); rewinding to epoch 2;
# IMP 30 rounds at 20 %; CS 11 values of s_init in [-0.3, 0.3], 5 rounds each; 3 seeds.  One-shot pruning: 200
# epochs (lr / 10 at 80, 120), mask fixed at 160, 40 epochs of fine-tuning at lr 1e-3.  Conv-6 supermasks: Adam
# 3e-4, 100 epochs (SS masks: SGD lr 100).  No mask learning-rate multiplier.
FULL = dict(
    dataset="cifar10", model="resnet20", hidden=[], batch_size=128, lr=0.1, momentum=0.9, weight_decay=1e-4,
    milestones=[56 / 85, 71 / 85], n_seeds=3,
    round_epochs=85, rewind_epoch=2, cs_rounds=5, cs_s_inits=[round(-0.3 + 0.06 * i, 2) for i in range(11)],
    imp_rounds=30, impc_rounds=30, imp_rate=0.2, lam=1e-8, beta_final=200.0, mask_lr_mult=1.0,
    oneshot_epochs=160, finetune_epochs=40, finetune_lr=0.001,
    mp_sparsities=[0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.975, 0.98, 0.99],
    gmp_sparsities=[0.5, 0.7, 0.8, 0.86, 0.9, 0.95, 0.98, 0.99], cs_oneshot=[(s, 1e-8) for s in
                                                                             (0.0, -0.05, -0.1, -0.2, -0.3)],
    hp_s_init=-0.2, hp_beta_finals=[50.0, 100.0, 150.0, 200.0], hp_lams=[0.0, 1e-12, 1e-10, 1e-8], hp_epochs=85,
    sm_epochs=100, sm_lr=3e-4, sm_cs_lams=[1e-8], sm_ss_s_inits=[round(-0.2 + 0.02 * i, 2) for i in range(16)],
    sm_ss_lr=100.0,
)
