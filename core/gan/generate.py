"""Images from text with a trained generator: load with checks, sample, interpolate, save."""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from core.gan import GanError


@dataclass
class LoadedGenerator:
    generator: object  # models.gan.Generator (EMA weights), eval mode
    meta: dict  # model_id, cond_dim, resolution, arch, step, epoch, config
    path: Path

    @property
    def resolution(self) -> int:
        return int(self.meta["resolution"])


def to_uint8(images) -> np.ndarray:
    """(B, 3, R, R) tensor in [-1, 1] -> (B, R, R, 3) uint8."""
    arr = images.detach().float().clamp(-1, 1).add(1).mul(127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    return np.ascontiguousarray(arr)


def make_grid(images: np.ndarray, ncol: int, pad: int = 2) -> Image.Image:
    """(N, R, R, 3) uint8 -> one image with `ncol` columns and a white border between tiles."""
    n, r = images.shape[0], images.shape[1]
    ncol = max(1, min(ncol, n))
    nrow = (n + ncol - 1) // ncol
    grid = np.full((nrow * (r + pad) + pad, ncol * (r + pad) + pad, 3), 255, np.uint8)
    for i in range(n):
        y, x = divmod(i, ncol)
        grid[pad + y * (r + pad): pad + y * (r + pad) + r, pad + x * (r + pad): pad + x * (r + pad) + r] = images[i]
    return Image.fromarray(grid, "RGB")


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def save_png_atomic(image: Image.Image, path: Path) -> None:
    from core.images import atomic_write_bytes

    atomic_write_bytes(Path(path), png_bytes(image))


def load_generator(path: Path, *, device: str = "cpu", model_id: Optional[str] = None, resolution: Optional[int] = None, cond_dim: Optional[int] = None) -> LoadedGenerator:
    """Load a `generator_*.pth`; a checkpoint from another backend, resolution or dim is a `GanError`."""
    import torch

    from models.gan import GanArch, Generator

    path = Path(path)
    if not path.is_file():
        raise GanError(f"checkpoint '{path}' does not exist; train a model first or pick an existing generator_*.pth")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain data only: a checkpoint file never runs code
    except Exception as exc:
        raise GanError(f"checkpoint '{path.name}' cannot be read ({type(exc).__name__}); it is damaged or not a PhotoLore GAN checkpoint") from None
    if not isinstance(ckpt, dict) or "meta" not in ckpt or "generator_ema" not in ckpt:
        raise GanError(f"'{path.name}' is not a PhotoLore GAN generator checkpoint (expected a generator_*.pth written by `gan train`)")
    meta = ckpt["meta"]
    if model_id is not None and meta.get("model_id") != model_id:
        raise GanError(
            f"checkpoint '{path.name}' was trained on conditions from backend '{meta.get('model_id')}', but the active backend is '{model_id}'. "
            "Switch to that backend or train a new run with this one"
        )
    if resolution is not None and int(meta.get("resolution", -1)) != int(resolution):
        raise GanError(f"checkpoint '{path.name}' generates {meta.get('resolution')} px images, not {resolution} px; pick a checkpoint of that resolution")
    if cond_dim is not None and int(meta.get("cond_dim", -1)) != int(cond_dim):
        raise GanError(f"checkpoint '{path.name}' expects {meta.get('cond_dim')}-d conditions but the backend gives {cond_dim}-d ones; use the backend it was trained with")
    G = Generator(GanArch(**meta["arch"]))
    try:
        G.load_state_dict(ckpt["generator_ema"])
    except RuntimeError as exc:
        raise GanError(f"checkpoint '{path.name}' does not match its recorded architecture: {str(exc).splitlines()[0]}") from None
    return LoadedGenerator(G.eval().requires_grad_(False).to(device), meta, path)


def generate(G, conditions: np.ndarray, *, n_per: int = 1, seed: int = 0, truncation: Optional[float] = None, batch_size: int = 64) -> np.ndarray:
    """(P, D) conditions -> (P * n_per, R, R, 3) uint8; the noise depends on `seed` only, so the
    same seed gives the same layout for every prompt."""
    import torch

    from models.gan import truncated_noise

    device = next(G.parameters()).device
    cond = torch.as_tensor(np.asarray(conditions, dtype=np.float32))
    cond = torch.nn.functional.normalize(cond, dim=1)
    z = truncated_noise(n_per, G.arch.z_dim, truncation=truncation, generator=torch.Generator().manual_seed(int(seed)))
    zz = z.repeat(cond.shape[0], 1)
    cc = cond.repeat_interleave(n_per, dim=0)
    out = []
    with torch.no_grad():
        for s in range(0, zz.shape[0], batch_size):
            out.append(to_uint8(G(zz[s:s + batch_size].to(device), cc[s:s + batch_size].to(device))))
    return np.concatenate(out, axis=0)


def _check_backend(loaded: LoadedGenerator, backend) -> None:
    if loaded.meta.get("model_id") != backend.model_id:
        raise GanError(
            f"checkpoint '{loaded.path.name}' was trained with backend '{loaded.meta.get('model_id')}', the active one is '{backend.model_id}'. "
            "Switch backend or train a new run"
        )


def generate_from_text(loaded: LoadedGenerator, backend, texts: Sequence[str], *, n_per: int = 4, seed: int = 0, truncation: Optional[float] = None) -> np.ndarray:
    """Embed `texts` with the backend the checkpoint was trained with and generate `n_per` each."""
    texts = [t.strip() for t in texts]
    if not texts or not all(texts):
        raise GanError("type a text to generate from (an empty prompt has no embedding)")
    _check_backend(loaded, backend)
    cond = np.asarray(backend.embed_texts(texts), dtype=np.float32)
    if cond.shape[1] != loaded.meta["cond_dim"]:
        raise GanError(f"the backend's text embeddings are {cond.shape[1]}-d, the checkpoint expects {loaded.meta['cond_dim']}-d")
    return generate(loaded.generator, cond, n_per=n_per, seed=seed, truncation=truncation)


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation between unit vectors (falls back to lerp when they coincide)."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    omega = float(np.arccos(np.clip(np.dot(a, b), -1.0, 1.0)))
    if omega < 1e-6:
        return (1 - t) * a + t * b
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def interpolate(loaded: LoadedGenerator, backend, text_a: str, text_b: str, *, steps: int = 8, seed: int = 0, truncation: Optional[float] = None) -> np.ndarray:
    """`steps` images walking from text_a to text_b in condition space with fixed noise."""
    if not text_a.strip() or not text_b.strip():
        raise GanError("interpolation needs two non-empty texts")
    _check_backend(loaded, backend)
    ea, eb = np.asarray(backend.embed_texts([text_a, text_b]), dtype=np.float32)
    conds = np.stack([slerp(ea, eb, t) for t in np.linspace(0.0, 1.0, max(2, steps))]).astype(np.float32)
    return generate(loaded.generator, conds, n_per=1, seed=seed, truncation=truncation)


def save_images(images: np.ndarray, out_dir: Path, prefix: str = "gan") -> list[Path]:
    """One PNG per image, written atomically; returns the paths."""
    paths = []
    for i, arr in enumerate(images):
        p = Path(out_dir) / f"{prefix}_{i:03d}.png"
        save_png_atomic(Image.fromarray(arr, "RGB"), p)
        paths.append(p)
    return paths
