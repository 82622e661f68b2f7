"""How good are the generated images? Distribution distance, text alignment, shapes accuracy.

FID/KID here are computed on EfficientNet-Lite0 pooled features (the encoder that ships in a
package) and labelled "FID-EffNet" / "KID-EffNet": useful to compare runs with each other, NOT
comparable to published FID numbers, which use Inception-v3. When Inception weights are on
disk (`inception_weights`), the same distances are also reported on them as "FID-Inception".
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from core.gan import GanError

EFFNET_NOTE = "FID-EffNet/KID-EffNet use EfficientNet-Lite0 features; compare runs with each other only, not with published (Inception) FID."


# ---------------------------------------------------------------- feature distances

def effnet_features(images: np.ndarray, *, model=None, batch_size: int = 32, device: str = "cpu", on_progress: Optional[Callable[..., None]] = None) -> np.ndarray:
    """(N, R, R, 3) uint8 -> (N, 1280) EfficientNet-Lite0 pooled features (upsampled to 224 px)."""
    import torch

    from models.efficientnet import MEAN, STD, load_efficientnet_lite0

    model = model or load_efficientnet_lite0(device)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    out = []
    with torch.no_grad():
        for s in range(0, len(images), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(images[s:s + batch_size])).permute(0, 3, 1, 2).float() / 255.0
            x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
            pooled, _ = model(((x - mean) / std).to(device))
            out.append(pooled.float().cpu().numpy())
            if on_progress:
                on_progress(min(len(images), s + batch_size), len(images))
    return np.concatenate(out).astype(np.float64)


def inception_features(images: np.ndarray, weights: Path, *, batch_size: int = 16, device: str = "cpu") -> np.ndarray:
    """(N, R, R, 3) uint8 -> (N, 2048) Inception-v3 pool features from a local torchvision state dict."""
    import torch
    from torchvision.models import inception_v3

    weights = Path(weights)
    if not weights.is_file():
        raise GanError(f"Inception weights '{weights}' not found; FID-Inception needs a torchvision inception_v3 state dict on disk")
    model = inception_v3(weights=None, aux_logits=True, init_weights=False)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.fc = torch.nn.Identity()
    model.eval().to(device)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    out = []
    with torch.no_grad():
        for s in range(0, len(images), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(images[s:s + batch_size])).permute(0, 3, 1, 2).float() / 255.0
            x = torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
            out.append(model(((x - mean) / std).to(device)).float().cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def frechet_distance(f1: np.ndarray, f2: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N_i, F)."""
    from scipy import linalg

    if len(f1) < 2 or len(f2) < 2:
        raise GanError("Frechet distance needs at least 2 images on each side")
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    import warnings

    with warnings.catch_warnings():
        # With fewer images than feature dimensions the covariances are singular; the real
        # part of the square root is still the standard estimate, so the warning is noise.
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
    if not np.isfinite(covmean).all():
        # Near-singular covariances (few images): regularise, as the reference implementation does.
        eps = np.eye(s1.shape[0]) * 1e-6
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def kernel_distance(f1: np.ndarray, f2: np.ndarray, *, n_subsets: int = 20, subset_size: int = 100, seed: int = 0) -> tuple[float, float]:
    """KID: unbiased MMD^2 with the cubic polynomial kernel, mean and std over random subsets."""
    rng = np.random.default_rng(seed)
    d = f1.shape[1]
    m = min(subset_size, len(f1), len(f2))
    if m < 2:
        raise GanError("KID needs at least 2 images on each side")
    vals = []
    for _ in range(n_subsets):
        x = f1[rng.choice(len(f1), m, replace=False)]
        y = f2[rng.choice(len(f2), m, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        vals.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean())
    return float(np.mean(vals)), float(np.std(vals))


def distribution_metrics(real: np.ndarray, fake: np.ndarray, *, model=None, inception_weights: Optional[Path] = None, device: str = "cpu") -> dict:
    """FID-EffNet and KID-EffNet (plus FID-Inception when its weights are on disk)."""
    fr, ff = effnet_features(real, model=model, device=device), effnet_features(fake, model=model, device=device)
    kid, kid_std = kernel_distance(fr, ff)
    out = {"FID-EffNet": frechet_distance(fr, ff), "KID-EffNet": kid, "KID-EffNet_std": kid_std, "n_real": len(real), "n_fake": len(fake), "note": EFFNET_NOTE}
    if inception_weights is not None:
        ir, iff = inception_features(real, inception_weights, device=device), inception_features(fake, inception_weights, device=device)
        out["FID-Inception"] = frechet_distance(ir, iff)
        out["KID-Inception"] = kernel_distance(ir, iff)[0]
    return out


# ---------------------------------------------------------------- text-image alignment

def alignment_score(backend, images: np.ndarray, texts: Sequence[str]) -> float:
    """Mean cosine between each generated image and its text, measured by the active backend.

    clip: image embedding vs text embedding. bundled: the backend's caption of the image vs
    the text, both as MiniLM embeddings (the same comparison text search makes).
    """
    from PIL import Image

    if len(images) != len(texts):
        raise GanError(f"alignment needs one text per image ({len(images)} images, {len(texts)} texts)")
    pil = [Image.fromarray(a, "RGB") for a in images]
    t = np.asarray(backend.embed_texts(list(texts)), dtype=np.float32)
    if backend.text_space == "image":
        e = np.asarray(backend.embed_images(pil), dtype=np.float32)
    else:
        e = np.asarray(backend.embed_texts([d.caption for d in backend.describe(pil)]), dtype=np.float32)
    t /= np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    e /= np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    return float((t * e).sum(1).mean())


# ---------------------------------------------------------------- shapes judge

def _judge_net(n_classes: int):
    from torch import nn

    def block(i, o):
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(inplace=True), nn.MaxPool2d(2))

    # (B, 3, R, R) -> (B, 64, R/8, R/8) -> global pool -> (B, n_classes); size-agnostic.
    return nn.Sequential(block(3, 16), block(16, 32), block(32, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, n_classes))


@dataclass
class ShapeJudge:
    """A small CNN trained on real shapes images to name colour + shape (18 classes)."""

    model: object
    classes: list[str]
    resolution: int

    def predict(self, images: np.ndarray, batch_size: int = 256) -> list[str]:
        import torch

        self.model.eval()
        out = []
        with torch.no_grad():
            for s in range(0, len(images), batch_size):
                x = torch.from_numpy(np.ascontiguousarray(images[s:s + batch_size])).permute(0, 3, 1, 2).float() / 127.5 - 1
                out.extend(self.model(x).argmax(1).tolist())
        return [self.classes[i] for i in out]

    def accuracy(self, images: np.ndarray, labels: Sequence[str]) -> float:
        pred = self.predict(images)
        return float(np.mean([p == t for p, t in zip(pred, labels)]))


def degrade(x, generator=None):
    """Random blur, noise, smooth colour wash and brightness/contrast on (B, 3, R, R) in [-1, 1].

    Generated images differ from the clean renders in exactly these ways (soft edges, grainy or
    tinted backgrounds). A judge trained through this must read shape from the outline rather
    than from render-specific texture; the hue of the shape (the colour label) is kept.
    """
    import torch
    from torch.nn import functional as F

    B = x.shape[0]

    def rand(*shape):
        return torch.rand(*shape, generator=generator)

    blurred = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    blurred2 = F.avg_pool2d(blurred, 3, 1, 1, count_include_pad=False)
    w1, w2 = rand(B, 1, 1, 1), rand(B, 1, 1, 1) * (rand(B, 1, 1, 1) < 0.5)
    x = x * (1 - w1) + blurred * w1
    x = x * (1 - w2) + blurred2 * w2
    wash = F.interpolate(torch.randn(B, 3, 4, 4, generator=generator) * 0.08, size=x.shape[-2:], mode="bilinear", align_corners=False)
    x = x + wash + torch.randn(x.shape, generator=generator) * rand(B, 1, 1, 1) * 0.12
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (0.8 + 0.4 * rand(B, 1, 1, 1)) + mean + (rand(B, 1, 1, 1) - 0.5) * 0.2
    return x.clamp(-1, 1)


def train_judge(images: np.ndarray, labels: Sequence[str], *, steps: int = 1500, batch_size: int = 64, seed: int = 0, cancel=None) -> ShapeJudge:
    """Fit the judge on real (N, R, R, 3) uint8 images for `steps` minibatches.

    Half of each batch goes through `degrade`, so the judge names the shape of a soft-edged or
    noisy rendering as well as of a clean one (a judge trained on clean renders only calls
    almost any imperfect shape by one class name, which makes it useless for generated images).
    """
    import torch

    classes = sorted(set(labels))
    y = torch.tensor([classes.index(l) for l in labels])
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
    torch.manual_seed(seed)
    model = _judge_net(len(classes))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=max(steps, 1))
    model.train()
    done = 0
    while done < steps:
        for idx in torch.randperm(len(x)).split(batch_size):
            if done >= steps or (cancel is not None and cancel.is_set()):
                done = steps
                break
            # A little translation so the judge does not key on exact pixel positions.
            xb = torch.roll(x[idx], shifts=(int(torch.randint(-2, 3, ())), int(torch.randint(-2, 3, ()))), dims=(2, 3))
            half = len(xb) // 2
            xb = torch.cat([xb[:half], degrade(xb[half:])])
            loss = torch.nn.functional.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            done += 1
    return ShapeJudge(model.eval(), classes, images.shape[1])


def conditional_accuracy(G, judge: ShapeJudge, conditions: np.ndarray, labels: Sequence[str], *, n_per: int = 4, seed: int = 123) -> float:
    """Share of generated images whose colour+shape, as judged, match the condition's class."""
    return attribute_accuracy(G, judge, conditions, labels, n_per=n_per, seed=seed)["class"]


def within_group_diversity(groups: Sequence[np.ndarray]) -> float:
    """Mean pairwise L1 distance (pixels scaled to 0..1) between the images of each group.

    Groups are images that share one condition: several noise draws of one prompt, or the real
    photos of one caption. Near 0 means the generator ignores its noise (one image per prompt);
    compare with the same number for real images. Groups of fewer than two images are skipped.
    """
    values = []
    for g in groups:
        g = np.asarray(g, dtype=np.float32) / 255.0
        if len(g) < 2:
            continue
        flat = g.reshape(len(g), -1)
        d = np.abs(flat[:, None, :] - flat[None, :, :]).mean(axis=2)
        values.append(d[np.triu_indices(len(g), k=1)].mean())
    if not values:
        raise ValueError("within_group_diversity needs at least one group of two or more images")
    return float(np.mean(values))


def attribute_accuracy(G, judge: ShapeJudge, conditions: np.ndarray, labels: Sequence[str], *, n_per: int = 4, seed: int = 123) -> dict:
    """Judged accuracy of generated images: whole class, colour alone and shape alone."""
    from core.gan.generate import generate

    imgs = generate(G, conditions, n_per=n_per, seed=seed)
    truth = [l for l in labels for _ in range(n_per)]
    pred = judge.predict(imgs)
    split = [(p.split("_"), t.split("_")) for p, t in zip(pred, truth)]
    return {
        "class": float(np.mean([p == t for p, t in zip(pred, truth)])),
        "colour": float(np.mean([p[0] == t[0] for p, t in split])),
        "shape": float(np.mean([p[1] == t[1] for p, t in split])),
    }
