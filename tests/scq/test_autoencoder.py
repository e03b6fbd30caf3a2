"""Unit tests of effcourse.scq.autoencoder (chapter 04-scq): the VQ-VAE of Table 5.3, its loop and metrics."""

from __future__ import annotations

import pytest
import torch

from effcourse.scq.autoencoder import VQAutoencoder, evaluate_autoencoder, train_autoencoder
from effcourse.scq.quantizers import SoftConvexQuantizer, VectorQuantizer, make_quantizer


@pytest.mark.parametrize("downsamples,size,channels", [(1, 8, 1), (1, 32, 3), (2, 16, 3)])
def test_autoencoder_shapes(downsamples, size, channels):
    m = VQAutoencoder(VectorQuantizer(16, 4), in_channels=channels, embedding_dim=4, downsamples=downsamples)
    x = torch.rand(2, channels, size, size)
    out = m(x)
    assert out.x_hat.shape == x.shape
    assert out.z_e.shape == (2, 4, size // 2 ** downsamples, size // 2 ** downsamples)


def test_training_lowers_reconstruction_error():
    torch.manual_seed(0)
    x = torch.rand(64, 1, 8, 8)
    m = VQAutoencoder(SoftConvexQuantizer(16, 4), embedding_dim=4)
    before = evaluate_autoencoder(m, x)["recon_mse"]
    h = train_autoencoder(m, x, x, steps=60, batch_size=32, lr=3e-3, eval_every=30,
                          generator=torch.Generator().manual_seed(0))
    assert not h.diverged and h.steps == [30, 60]
    assert h.test_mse[-1] < 0.5 * before
    with pytest.raises(ValueError, match="embedding_dim"):
        VQAutoencoder(VectorQuantizer(16, 4), embedding_dim=8)


def test_training_draws_full_batches_for_exactly_the_step_budget():
    # 70 images, batch 32: two full batches per epoch (the last 6 images are dropped), so 5 steps span 3 epochs
    torch.manual_seed(0)
    x = torch.rand(70, 1, 8, 8)
    m = VQAutoencoder(VectorQuantizer(8, 4, dead_code_every=1), embedding_dim=4)
    seen = []
    m.encoder.register_forward_pre_hook(lambda mod, args: seen.append(args[0].shape[0]) if mod.training else None)
    h = train_autoencoder(m, x, x[:8], steps=5, batch_size=32, eval_every=2, generator=torch.Generator().manual_seed(1))
    assert seen == [32] * 5 and h.steps == [2, 4, 5] and len(h.test_mse) == 3
    assert m.quantizer.replaced > 0  # dead codes are replaced during the steps


def test_blowup_stops_training_with_diverged():
    torch.manual_seed(0)
    m = VQAutoencoder(VectorQuantizer(8, 4), embedding_dim=4)
    h = train_autoencoder(m, torch.rand(16, 1, 8, 8), torch.rand(4, 1, 8, 8), steps=10, batch_size=8,
                          blowup=0.0)  # every loss exceeds 0
    assert h.diverged and h.diverged_at == 1 and h.steps == []


def test_evaluate_reports_table_5_1_metrics():
    torch.manual_seed(0)
    x = torch.rand(6, 1, 8, 8)
    m = VQAutoencoder(VectorQuantizer(8, 4), embedding_dim=4)
    out = evaluate_autoencoder(m, x, batch_size=4)
    assert {"recon_mse", "quant_error", "perplexity_hard", "perplexity_soft", "codes_used", "nonzeros",
            "quant_ms"} <= set(out)
    assert out["nonzeros"] == 1.0 and 1 <= out["codes_used"] <= 8
    with torch.no_grad():
        assert out["recon_mse"] == pytest.approx(float(((m(x).x_hat - x) ** 2).mean()), rel=1e-5)
    assert set(evaluate_autoencoder(VQAutoencoder(None, embedding_dim=4), x)) == {"recon_mse"}


def test_autoencoder_errors():
    m = VQAutoencoder(VectorQuantizer(16, 4), embedding_dim=4)
    x = torch.rand(8, 1, 8, 8)
    with pytest.raises(ValueError, match="embedding_dim"):
        VQAutoencoder(VectorQuantizer(16, 4), embedding_dim=8)
    with pytest.raises(ValueError, match="steps"):
        train_autoencoder(m, x, x, steps=-1)
    with pytest.raises(ValueError, match="eval_every"):
        train_autoencoder(m, x, x, steps=1, eval_every=0)
    with pytest.raises(ValueError, match="lr"):
        train_autoencoder(m, x, x, steps=1, lr=0.0)
    with pytest.raises(ValueError, match="x_train"):
        train_autoencoder(m, x.flatten(1), x, steps=1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_training_runs():
    m = VQAutoencoder(make_quantizer("scq", 16, 4, device="cuda"), embedding_dim=4, device="cuda")
    h = train_autoencoder(m, torch.rand(32, 1, 8, 8, device="cuda"), torch.rand(8, 1, 8, 8, device="cuda"),
                          steps=5, batch_size=16, eval_every=5)
    assert not h.diverged and h.steps == [5]
