"""A text-conditioned GAN small enough to hold in one's head (DF-GAN generator, projection D).

Generator: [noise, condition] -> 4x4 feature map -> N up-blocks (x2 each) -> RGB in [-1, 1]. Every up-block
modulates its features with channel-wise scale/shift predicted from the condition vector
(DF-GAN's "deep fusion"), so the condition steers every resolution, not just the input.

Discriminator: down-blocks to a 4x4 map -> pooled feature phi(x); the score is
    D(x, c) = w . phi(x) + <E c, phi(x)>
the projection discriminator (Miyato & Koyama 2018) written for a continuous condition, which
lets D say "real image, wrong condition" - the signal that makes the generator obey the text.

D also has a contrastive head (LAFITE, Zhou et al. 2022 - the language-free text-to-image recipe
this training follows): its image feature must pick out its own condition among the batch's,
for real images when training D and for fakes when training G. On a CPU budget this dense signal
teaches the generator to obey the condition far sooner than the projection term alone.

The condition is any L2-normalised embedding (CLIP image/text, MiniLM caption); the model only
knows its dimension. Both networks hold the training conditions' mean (`cond_center`) and use
normalise(c - mean): sentence embeddings of one collection share a large common component, and
removing it makes the part that differs between texts stand out. Shapes in comments: B batch, Z noise dim, D condition dim, C channels.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

RESOLUTIONS = (32, 64, 128)


@dataclass
class GanArch:
    """Architecture of one generator/discriminator pair; saved inside every checkpoint."""

    resolution: int = 64
    cond_dim: int = 384
    z_dim: int = 100
    ngf: int = 32  # generator base width; the 4x4 stage has ngf * 8 channels
    ndf: int = 32  # discriminator base width
    cond_hidden: int = 128  # width of the MLPs that turn the condition into scale/shift
    # Feed the condition into the 4x4 input map as well (StackGAN/AttnGAN concatenate [z, c]).
    # Without it the layout comes from z alone and the condition can only re-weight channels:
    # samples then put the object wherever the noise says and the text sets little but colour.
    # False only in checkpoints written before it existed (they load unchanged); presets turn it on.
    cond_layout: bool = False

    def __post_init__(self) -> None:
        if self.resolution not in RESOLUTIONS:
            raise ValueError(f"resolution {self.resolution} is not supported; choose one of {RESOLUTIONS}")
        if self.cond_dim < 1:
            raise ValueError(f"cond_dim must be positive, got {self.cond_dim}")

    @property
    def n_stages(self) -> int:
        return int(math.log2(self.resolution // 4))

    def to_dict(self) -> dict:
        return asdict(self)


# Presets in the spirit of minGPT's `gpt-nano`: `tiny` trains a few steps in a test in seconds.
PRESETS: dict[str, dict] = {
    "tiny": dict(z_dim=16, ngf=4, ndf=4, cond_hidden=16, cond_layout=True),
    "compact": dict(z_dim=64, ngf=8, ndf=8, cond_hidden=64, cond_layout=True),
    "small": dict(z_dim=64, ngf=16, ndf=16, cond_hidden=64, cond_layout=True),
    "base": dict(z_dim=100, ngf=32, ndf=32, cond_hidden=128, cond_layout=True),
}


def make_arch(preset: str, *, resolution: int, cond_dim: int) -> GanArch:
    """A `GanArch` from a preset name; unknown names list the valid ones."""
    if preset not in PRESETS:
        raise ValueError(f"unknown GAN preset {preset!r}; choose one of {sorted(PRESETS)}")
    return GanArch(resolution=resolution, cond_dim=cond_dim, **PRESETS[preset])


def _channels(base: int, n_stages: int) -> list[int]:
    # Widest at 4x4, halving per stage, capped at 8x: e.g. 3 stages -> [8, 4, 2, 1] * base.
    return [base * 2 ** min(3, n_stages - i) for i in range(n_stages + 1)]


class Affine(nn.Module):
    """Channel-wise scale and shift predicted from the condition; starts as the identity."""

    def __init__(self, cond_dim: int, hidden: int, channels: int):
        super().__init__()
        self.gamma = nn.Sequential(nn.Linear(cond_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))
        self.beta = nn.Sequential(nn.Linear(cond_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))
        nn.init.zeros_(self.gamma[2].weight)
        nn.init.ones_(self.gamma[2].bias)
        nn.init.zeros_(self.beta[2].weight)
        nn.init.zeros_(self.beta[2].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        # x (B, C, H, W), c (B, D)
        return self.gamma(c)[:, :, None, None] * x + self.beta(c)[:, :, None, None]


class Fuse(nn.Module):
    """DF-GAN's deep-fusion block: two conditional affines, each followed by a LeakyReLU.

    Unlike DF-GAN, features are batch-normalised first (conditional batch norm, as in the
    projection-discriminator papers): on a CPU budget of ~1000 steps it learns the condition
    several times faster than the unnormalised block.
    """

    def __init__(self, cond_dim: int, hidden: int, channels: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.a1 = Affine(cond_dim, hidden, channels)
        self.a2 = Affine(cond_dim, hidden, channels)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.a1(self.norm(x), c), 0.2)
        return F.leaky_relu(self.a2(x, c), 0.2)


class UpBlock(nn.Module):
    """(B, C_in, H, W) -> (B, C_out, 2H, 2W), residual, condition fused before each conv."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, hidden: int):
        super().__init__()
        self.fuse1 = Fuse(cond_dim, hidden, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.fuse2 = Fuse(cond_dim, hidden, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        h = self.conv1(self.fuse1(x, c))
        h = self.conv2(self.fuse2(h, c))
        return self.skip(x) + h


class Generator(nn.Module):
    def __init__(self, arch: GanArch):
        super().__init__()
        self.arch = arch
        ch = _channels(arch.ngf, arch.n_stages)
        self.fc = nn.Linear(arch.z_dim + (arch.cond_dim if arch.cond_layout else 0), ch[0] * 4 * 4)
        self.blocks = nn.ModuleList(UpBlock(ch[i], ch[i + 1], arch.cond_dim, arch.cond_hidden) for i in range(arch.n_stages))
        self.to_rgb = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(ch[-1], 3, 3, 1, 1), nn.Tanh())
        self.register_buffer("cond_center", torch.zeros(arch.cond_dim))

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """z (B, Z), c (B, D) -> images (B, 3, R, R) in [-1, 1]."""
        c = F.normalize(c - self.cond_center, dim=1)
        x = self.fc(torch.cat([z, c], dim=1) if self.arch.cond_layout else z).view(z.shape[0], -1, 4, 4)  # (B, C0, 4, 4)
        for block in self.blocks:
            x = block(x, c)  # (B, C_i, 4 * 2^i, 4 * 2^i)
        return self.to_rgb(x)


class DownBlock(nn.Module):
    """(B, C_in, H, W) -> (B, C_out, H/2, W/2), residual, spectral-normalised."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        sn = nn.utils.spectral_norm
        self.conv1 = sn(nn.Conv2d(c_in, c_out, 4, 2, 1))
        self.conv2 = sn(nn.Conv2d(c_out, c_out, 3, 1, 1))
        self.skip = sn(nn.Conv2d(c_in, c_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.leaky_relu(x, 0.2))
        h = self.conv2(F.leaky_relu(h, 0.2))
        return self.skip(F.avg_pool2d(x, 2)) + h


class Discriminator(nn.Module):
    def __init__(self, arch: GanArch):
        super().__init__()
        self.arch = arch
        sn = nn.utils.spectral_norm
        ch = list(reversed(_channels(arch.ndf, arch.n_stages)))  # e.g. [1, 2, 4, 8] * ndf
        self.from_rgb = sn(nn.Conv2d(3, ch[0], 3, 1, 1))
        self.blocks = nn.ModuleList(DownBlock(ch[i], ch[i + 1]) for i in range(arch.n_stages))
        self.linear = sn(nn.Linear(ch[-1], 1))
        self.embed = sn(nn.Linear(arch.cond_dim, ch[-1], bias=False))
        self.to_cond = nn.Linear(ch[-1], arch.cond_dim)  # contrastive head: image feature -> condition space
        self.register_buffer("cond_center", torch.zeros(arch.cond_dim))

    def center(self, c: torch.Tensor) -> torch.Tensor:
        return F.normalize(c - self.cond_center, dim=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, R, R) -> phi (B, C): pooled features, shared by every score of one image."""
        h = self.from_rgb(x)
        for block in self.blocks:
            h = block(h)  # ends at (B, C, 4, 4)
        return F.leaky_relu(h, 0.2).sum(dim=(2, 3))

    def score(self, phi: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """phi (B, C), c (B, D) -> (B,) unbounded; higher means "real and matching"."""
        return self.linear(phi).squeeze(1) + (self.embed(self.center(c)) * phi).sum(dim=1)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.score(self.features(x), c)


def contrastive_loss(D: Discriminator, phi: torch.Tensor, c: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Cross-entropy of each image feature finding its own condition among the batch's.

    Rows whose conditions coincide (two photos with one caption) all count as positives.
    """
    img = F.normalize(D.to_cond(phi), dim=1)  # (B, D)
    cond = D.center(c)  # (B, D)
    logits = img @ cond.T / temperature  # (B, B)
    same = (cond @ cond.T > 0.999).float()
    target = same / same.sum(dim=1, keepdim=True)
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


# ---- differentiable augmentation (Zhao et al. 2020): applied to real and fake alike, so D
# cannot memorise a small training set and G receives gradients through the augmentation ----

def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    B, _, H, W = x.shape
    sh, sw = int(H * ratio + 0.5), int(W * ratio + 0.5)
    dx = torch.randint(-sh, sh + 1, (B, 1, 1), device=x.device)
    dy = torch.randint(-sw, sw + 1, (B, 1, 1), device=x.device)
    gy, gx = torch.meshgrid(torch.arange(H, device=x.device), torch.arange(W, device=x.device), indexing="ij")
    gy = torch.clamp(gy[None] + dx + 1, 0, H + 1)
    gx = torch.clamp(gx[None] + dy + 1, 0, W + 1)
    padded = F.pad(x, [1, 1, 1, 1])  # out-of-range pixels read the zero border
    idx = (gy * (W + 2) + gx).view(B, 1, -1).expand(-1, x.shape[1], -1)
    return padded.flatten(2).gather(2, idx).view_as(x)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    B, _, H, W = x.shape
    ch, cw = int(H * ratio + 0.5), int(W * ratio + 0.5)
    oy = torch.randint(0, H + (1 - ch % 2), (B, 1, 1), device=x.device)
    ox = torch.randint(0, W + (1 - cw % 2), (B, 1, 1), device=x.device)
    gy, gx = torch.meshgrid(torch.arange(H, device=x.device), torch.arange(W, device=x.device), indexing="ij")
    dy, dx = gy[None] - oy + ch // 2, gx[None] - ox + cw // 2  # a ch x cw box centred on (oy, ox)
    inside = (dy >= 0) & (dy < ch) & (dx >= 0) & (dx < cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def _colour(x: torch.Tensor) -> torch.Tensor:
    B = x.shape[0]
    x = x + (torch.rand(B, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(B, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(B, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


AUGMENTS = {"translation": _translation, "cutout": _cutout, "color": _colour}


def diff_augment(x: torch.Tensor, policy: str) -> torch.Tensor:
    """Apply the comma-separated `policy` ("translation,cutout", "color", "" = none)."""
    for name in filter(None, (p.strip() for p in policy.split(","))):
        if name not in AUGMENTS:
            raise ValueError(f"unknown augmentation {name!r}; choose from {sorted(AUGMENTS)}")
        x = AUGMENTS[name](x)
    return x


def hinge_d_loss(real: torch.Tensor, fake: torch.Tensor, mismatch: torch.Tensor | None = None) -> torch.Tensor:
    """Hinge loss for D; a real image with the wrong condition counts as fake (matching-aware)."""
    loss_fake = F.relu(1.0 + fake).mean()
    if mismatch is not None:
        loss_fake = 0.5 * (loss_fake + F.relu(1.0 + mismatch).mean())
    return F.relu(1.0 - real).mean() + loss_fake


def hinge_g_loss(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, parameters and buffers alike."""
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm.detach(), 1.0 - decay)
    for be, bm in zip(ema.buffers(), model.buffers()):
        be.copy_(bm)


def truncated_noise(n: int, z_dim: int, *, truncation: float | None, generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, Z) standard normal noise; with `truncation` t, values with |z| > t are redrawn."""
    z = torch.randn(n, z_dim, generator=generator)
    if truncation is not None and truncation > 0:
        for _ in range(100):
            bad = z.abs() > truncation
            if not bad.any():
                break
            z[bad] = torch.randn(int(bad.sum()), generator=generator)
        z = z.clamp(-truncation, truncation)
    return z
