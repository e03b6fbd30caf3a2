"""Chapter 7 (SMOL) at three scales.  ``full`` is the thesis's CIFAR-10 ResNet-20 protocol (Savarese 2025, 5.3).

``lam_d`` lists lambda times the number of quantized weights (the penalty is a sum over weights, so ``lambda * d``
is the size-free knob; the thesis's ResNet-20 lambda = 1e-6 is lambda * d of about 0.27).  ``dataset`` and ``flat``
go to :func:`effcourse.core.data.dataset` (its augmentation, CIFAR-10's crops and flips, comes with the data set);
``model`` to :func:`effcourse.smol.models.make_model`.  ``n_seeds`` and ``n_cnn_seeds`` are counts: the seeds
themselves come from the chapter's base seed (``run.seeds(n)``), so another ``SEED`` is an independent replicate.
"""

_COMMON = dict(
    dataset="digits", flat=True, model="mlp", hidden=64, channels=8, batch_size=64, momentum=0.9, weight_decay=0.0,
    p_init=8.0, lr_s=1e-2, samples=1, milestones=[], ft_milestones=[],
)

SMOKE = dict(
    _COMMON,
    lr_w=0.5, lr_ft=0.1, precision_epochs=20, finetune_epochs=5, n_seeds=1, lam_d=[0.03, 0.1, 0.3],
    uniform_bits=[1, 2, 3], quad_steps=600, quad_samples=4,
    layer_lam_d=[0.03], cnn_lam_d=[0.1], n_cnn_seeds=1, cnn_epochs=[4, 2], cnn_lr=[0.5, 0.1],
    split_total=16, split_fracs=[0.25, 0.75], act_lam=0.1, act_epochs=[8, 4],
)

BOOK = dict(
    _COMMON,
    lr_w=0.5, lr_ft=0.1, precision_epochs=60, finetune_epochs=30, n_seeds=5,
    lam_d=[0.01, 0.03, 0.05, 0.1, 0.3], uniform_bits=[1, 2, 3, 4], quad_steps=4000, quad_samples=16,
    layer_lam_d=[0.01, 0.03, 0.1], cnn_lam_d=[0.03, 0.1, 0.3], n_cnn_seeds=2, cnn_epochs=[40, 20],
    cnn_lr=[0.5, 0.1], split_total=90, split_fracs=[1 / 9, 2 / 9, 1 / 3, 2 / 3, 8 / 9], act_lam=0.1,
    act_epochs=[60, 30],
)

# The thesis (5.3.3): ResNet-20 on CIFAR-10 (crops + flips), 650 epochs = 350 precision training + 300 fine-tuning,
# SGD momentum 0.9, lr 0.1 decayed (by 10, assumed) at epochs 250, 500, 600, batch 128, weight decay 1e-4;
# s trained by Adam at lr 1e-3; p_init 8; lambda in {1e-6, 7e-7, 5e-7} (2.1 bpp at 1e-6, 2.8 at 5e-7).
# BatchNorm and the 1x1 shortcut convolutions stay in full precision; the first conv and last linear are quantized.
FULL = dict(
    _COMMON,
    dataset="cifar10", flat=False, model="resnet20", batch_size=128, weight_decay=1e-4, lr_s=1e-3,
    lr_w=0.1, lr_ft=0.01, precision_epochs=350, finetune_epochs=300, n_seeds=3,
    milestones=[250], ft_milestones=[150, 250],
    lam_d=[0.27 * 0.5, 0.27 * 0.7, 0.27], uniform_bits=[1, 2, 3], quad_steps=30000, quad_samples=256,
    layer_lam_d=[0.27], cnn_lam_d=[], n_cnn_seeds=0, cnn_epochs=[0, 0], cnn_lr=[0.1, 0.01],
    split_total=650, split_fracs=[100 / 650, 250 / 650, 350 / 650, 550 / 650], act_lam=0.0, act_epochs=[0, 0],
)
