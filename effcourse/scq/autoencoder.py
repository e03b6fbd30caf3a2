"""VQ-VAE-type autoencoders with a pluggable quantization bottleneck, their training loop and test metrics.

The architecture follows the classic VQ-VAE encoder/decoder that Gautam (2024), section 5.4 / Table 5.3 uses
for CIFAR-10 and GTSRB: strided convolutions down to the latent grid, a 3x3 convolution, a stack of residual
blocks, a 1x1 convolution to the code dimension ``F``; the decoder mirrors it with transposed convolutions.
With one stride-2 stage, 32 conv channels, 16 residual channels and 2 residual blocks it is the thesis's
CIFAR-10 model (32x32 -> 16x16 latents); the same class on 8x8 digits gives 4x4 latents.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..core.harness import synchronize
from ..core.train import batches
from .codebook import codes_used, perplexity
from .quantizers import QuantizerOutput

__all__ = ["AutoencoderHistory", "AutoencoderOutput", "ResidualStack", "StepCheckpoint", "VQAutoencoder",
           "evaluate_autoencoder", "train_autoencoder"]


class ResidualStack(nn.Module):
    """``blocks`` residual blocks ``x + conv1x1(relu(conv3x3(relu(x))))`` and a final ReLU."""

    def __init__(self, channels: int, res_channels: int, blocks: int, device: str | torch.device = "cpu"):
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.ReLU(), nn.Conv2d(channels, res_channels, 3, padding=1, device=device),
                          nn.ReLU(),
                          nn.Conv2d(res_channels, channels, 1, device=device))
            for _ in range(blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = x + b(x)
        return F.relu(x)


@dataclass
class AutoencoderOutput:
    """The reconstruction ``x_hat``, the encoder output ``z_e`` and the quantizer's output (``None`` without one)."""

    x_hat: torch.Tensor
    z_e: torch.Tensor
    q: QuantizerOutput | None

    @property
    def quant_loss(self) -> torch.Tensor:
        return self.q.loss if self.q is not None else self.x_hat.new_zeros(())


class VQAutoencoder(nn.Module):
    """Encoder, quantizer, decoder.  ``quantizer=None`` gives the non-quantized reference autoencoder.

    ``downsamples`` stride-2 stages shrink each side by ``2**downsamples``; ``embedding_dim`` is the code
    dimension F.
    """

    def __init__(self, quantizer: nn.Module | None, in_channels: int = 1, channels: int = 32,
                 res_channels: int = 16, res_blocks: int = 2, embedding_dim: int = 16, downsamples: int = 1,
                 device: str | torch.device = "cpu"):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("channels", channels), ("res_channels", res_channels),
                        ("embedding_dim", embedding_dim), ("downsamples", downsamples)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int; got {v!r}")
        if quantizer is not None and getattr(quantizer, "dim", embedding_dim) != embedding_dim:
            raise ValueError(f"quantizer.dim={quantizer.dim} differs from embedding_dim={embedding_dim}")
        enc: list[nn.Module] = []
        c_in = in_channels
        for _ in range(downsamples):
            enc += [nn.Conv2d(c_in, channels, 4, stride=2, padding=1, device=device), nn.ReLU()]
            c_in = channels
        enc += [nn.Conv2d(channels, channels, 3, padding=1, device=device),
                ResidualStack(channels, res_channels, res_blocks, device),
                nn.Conv2d(channels, embedding_dim, 1, device=device)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv2d(embedding_dim, channels, 3, padding=1, device=device),
                                ResidualStack(channels, res_channels, res_blocks, device)]
        for i in range(downsamples):
            last = i == downsamples - 1
            dec.append(nn.ConvTranspose2d(channels, in_channels if last else channels, 4, stride=2, padding=1,
                                          device=device))
            if not last:
                dec.append(nn.ReLU())
        self.decoder = nn.Sequential(*dec)
        self.quantizer = quantizer

    def forward(self, x: torch.Tensor) -> AutoencoderOutput:
        z_e = self.encoder(x)
        if self.quantizer is None:
            return AutoencoderOutput(self.decoder(z_e), z_e, None)
        q = self.quantizer(z_e)
        return AutoencoderOutput(self.decoder(q.z_q), z_e, q)


@dataclass
class AutoencoderHistory:
    """Training record: the step of each evaluation and the test metrics there; ``diverged`` if the loss blew
    up."""

    steps: list[int] = field(default_factory=list)
    test_mse: list[float] = field(default_factory=list)
    test_quant_error: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    diverged: bool = False
    diverged_at: int = 0


@dataclass
class StepCheckpoint:
    """Where :func:`train_autoencoder` saves its state every ``every`` steps (and at the last step), and resumes
    from: ``store`` is anything with ``save(name, step, **state)`` and ``load(name, **into)``, such as a sweep's
    :class:`effcourse.sweep.RunContext`, which also saves and restores every random stream."""

    store: Any
    name: str = "train"
    every: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.every, int) or isinstance(self.every, bool) or self.every < 1:
            raise ValueError(f"every must be a positive int (steps between checkpoints); got {self.every!r}")
        if not (hasattr(self.store, "save") and hasattr(self.store, "load")):
            raise TypeError(f"store must have save(name, step, **state) and load(name, **into); "
                            f"got {type(self.store).__name__}")



@torch.no_grad()
def evaluate_autoencoder(model: VQAutoencoder, x: torch.Tensor, batch_size: int = 4096) -> dict[str, float]:
    """Test metrics of Table 5.1: reconstruction MSE, quantization error ``mean((z_e - z_q)^2)``, perplexity
    (hard and soft), codes used, nonzero weights per latent vector, and the quantizer's forward time per batch
    in ms."""
    was = model.training
    model.eval()
    se, qe, n, weights, qtime, calls = 0.0, 0.0, 0, [], 0.0, 0
    for start in range(0, x.shape[0], batch_size):
        xb = x[start:start + batch_size]
        z_e = model.encoder(xb)
        if model.quantizer is not None:
            synchronize(z_e.device)  # on an accelerator the clock must wait for the kernels, not their launch
            t0 = time.perf_counter()
            q = model.quantizer(z_e)
            synchronize(z_e.device)
            qtime += time.perf_counter() - t0
            calls += 1
            z_q = q.z_q
            weights.append(q.weights)
            qe += float(q.quant_error) * xb.shape[0]
        else:
            z_q = z_e
        x_hat = model.decoder(z_q)
        se += float(F.mse_loss(x_hat, xb, reduction="sum"))
        n += xb.shape[0]
    model.train(was)
    out = {"recon_mse": se / x.numel()}
    if weights:
        w = torch.cat(weights)
        out.update(quant_error=qe / n, perplexity_hard=float(perplexity(w, "hard")),
                   perplexity_soft=float(perplexity(w, "soft")), codes_used=float(codes_used(w, "hard")),
                   codes_touched=float(codes_used(w, "soft")),
                   nonzeros=float((w > 1e-6).sum(1).float().mean()),
                   quant_ms=1e3 * qtime / max(calls, 1))
    return out


def train_autoencoder(model: VQAutoencoder, x_train: torch.Tensor, x_test: torch.Tensor, steps: int,
                      batch_size: int = 128, lr: float = 1e-3, generator: torch.Generator | None = None,
                      eval_every: int = 100, blowup: float = 1e6, progress: bool | str = False,
                      checkpoint: StepCheckpoint | None = None) -> AutoencoderHistory:
    """Adam on the VQ-VAE loss (5.5): ``mean((x - x_hat)^2)`` plus the quantizer's terms, for ``steps``
    minibatches of unlabeled images.

    Evaluates the test reconstruction MSE and quantization error every ``eval_every`` steps and at the end.
    Stops early with ``diverged=True`` when the loss becomes non-finite or exceeds ``blowup`` (Alg. 9 with the
    alternating projection can: its weights leave the simplex and ``z_q`` grows without bound).  Dead-code
    replacement happens inside the quantizer's forward pass (``VectorQuantizer(dead_code_every=...)``).

    Not :func:`effcourse.core.train.fit`: the thesis's budget is a number of steps (19,550 = 50 epochs of
    CIFAR-10), epochs drop their last partial batch, and evaluation and the blow-up check are per step; ``fit``
    counts epochs, keeps partial batches, evaluates per epoch and stops only on non-finite epoch losses.

    ``checkpoint`` (a :class:`StepCheckpoint`) is restored before the first step, if one was saved, and saved every
    ``checkpoint.every`` steps, at the last step and on divergence: model (quantizer buffers included), Adam, the
    history, and the minibatch order (``generator``'s state where the current epoch's permutation was drawn, and
    how many of its batches were used), so that a killed run continues exactly as it would have.
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps must be a non-negative int; got {steps!r}")
    if not isinstance(eval_every, int) or isinstance(eval_every, bool) or eval_every < 1:
        raise ValueError(f"eval_every must be a positive int; got {eval_every!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive finite number; got {lr!r}")
    for name, x in (("x_train", x_train), ("x_test", x_test)):
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name} must be a 4-d tensor of images N x C x H x W; got {shape}")
    if checkpoint is not None and generator is None:
        # the minibatch order is restored by redrawing the epoch's permutation from a saved generator state
        raise ValueError("generator must be given with checkpoint (a torch.Generator for the minibatch order)")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hist = AutoencoderHistory()
    n = x_train.shape[0]
    it = iter(())
    first, epoch_state, used = 1, None, 0  # used: batches taken from the current epoch's iterator
    if checkpoint is not None:
        got = checkpoint.store.load(checkpoint.name, model=model, optimizer=opt)
        if got is not None:
            done, st = got
            hist = AutoencoderHistory(**st["history"])
            if model.quantizer is not None:
                model.quantizer.replaced = int(st["replaced"])
            if hist.diverged or done >= steps:
                return hist
            first, epoch_state, used = done + 1, st["epoch_state"], int(st["used"])
            if epoch_state is not None:  # the same permutation again, and the generator where it was
                generator.set_state(epoch_state)
                it = batches(n, batch_size, generator, device=x_train.device, drop_last=True)
                for _ in range(used):
                    next(it)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=first - 1, desc=progress if isinstance(progress, str) else "steps",
                   leave=False)
    t0 = time.perf_counter() - hist.seconds

    def save(step: int) -> None:
        hist.seconds = time.perf_counter() - t0
        checkpoint.store.save(checkpoint.name, step, model=model, optimizer=opt, history=asdict(hist),
                              epoch_state=epoch_state, used=used,
                              replaced=getattr(model.quantizer, "replaced", 0))

    model.train()
    for step in range(first, steps + 1):
        idx = next(it, None)
        if idx is None or idx.numel() < batch_size // 2:  # a new epoch; skip a tiny last batch
            epoch_state = generator.get_state() if generator is not None else None
            it = batches(n, batch_size, generator, device=x_train.device, drop_last=True)
            idx, used = next(it), 0
        used += 1
        xb = x_train[idx]
        out = model(xb)
        loss = F.mse_loss(out.x_hat, xb) + out.quant_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        lv = float(loss.detach())
        if bar is not None:
            bar.update(1)
        if not math.isfinite(lv) or lv > blowup:
            hist.diverged, hist.diverged_at = True, step
            hist.train_loss.append(lv)
            if checkpoint is not None:
                save(step)
            break
        if step % eval_every == 0 or step == steps:
            m = evaluate_autoencoder(model, x_test)
            hist.steps.append(step)
            hist.train_loss.append(lv)
            hist.test_mse.append(m["recon_mse"])
            hist.test_quant_error.append(m.get("quant_error", 0.0))
        if checkpoint is not None and (step % checkpoint.every == 0 or step == steps):
            save(step)
    if bar is not None:
        bar.close()
    hist.seconds = time.perf_counter() - t0
    return hist
