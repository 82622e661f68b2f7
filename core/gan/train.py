"""Training loop: hinge loss, DiffAugment, matching-aware D, EMA generator, exact resume.

A run writes into its folder (layout and file I/O: core.gan.runs); training from a folder,
a library class or shapes, and the background job, are in core.gan.job.
Only latest + best + every `keep_every`th epoch are kept, within `checkpoint_budget_mb`
(core.gan.checkpoints).
All randomness of step s is seeded from (seed, s), so a run resumed from any checkpoint
continues exactly as if it had never stopped.
"""
from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

import numpy as np

from core.gan import GanError, checkpoints
from core.gan.runs import _atomic_torch_save, _write_json, _write_log, latest_checkpoint

FORMAT_VERSION = 1


@dataclass
class GanConfig:
    """Everything that shapes a training run; defaults suit a photo folder at 64 px on a CPU."""

    resolution: int = 64
    preset: str = "base"  # models.gan.PRESETS: tiny | small | base
    epochs: int = 50
    batch_size: int = 32  # lowered to the number of images when there are fewer (a small class)
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.0, 0.9)
    ema_decay: float = 0.999
    cond_noise: float = 0.01  # std of the Gaussian added to each condition coordinate
    augment: str = "translation,cutout"  # DiffAugment policy; "color" is off since colour is often the text
    mismatch: bool = True  # score real images with a wrong condition as fake
    contrastive: float = 1.0  # weight of the image-condition contrastive loss (LAFITE); 0 turns it off
    temperature: float = 0.1
    # Weight of the L1 between G(z, c_i) and photo i (pix2pix's paired term); 0 turns it off.
    # Training pairs every condition with its own photo, so this direct signal is free; on the
    # shapes bench (15 min CPU) it lifts colour+shape accuracy from 0.67 to 0.94 and FID too.
    recon: float = 10.0
    # MSGAN's mode-seeking weight: rewards samples of one condition that differ with the noise.
    # Off by default: on the shapes bench 0.01 triples the variety within a prompt and keeps the
    # text accuracy, but costs ~15% speed and worsens FID-EffNet (noisier backgrounds).
    mode_seeking: float = 0.0
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bf16 autocast when on CUDA; ignored on CPU
    max_seconds: Optional[float] = None  # stop (and checkpoint) after this much training time
    log_every: int = 20
    sample_noise: int = 8  # columns of the sample grid
    num_threads: Optional[int] = None  # torch CPU threads; None leaves torch's choice
    keep_every: int = checkpoints.KEEP_EVERY  # besides latest and best, keep the generator of every Nth epoch
    checkpoint_budget_mb: float = checkpoints.BUDGET_MB  # the oldest periodic generators are pruned beyond this

    @classmethod
    def from_dict(cls, d: dict) -> "GanConfig":
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if "betas" in kw:
            kw["betas"] = tuple(kw["betas"])
        return cls(**kw)


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    epoch: int  # completed epochs
    finished: bool  # all epochs done (not cancelled / out of time)
    generator_path: Optional[Path]
    seconds: float
    steps_per_s: float
    log: list[dict] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (input, reason) not used
    batch_size: int = 0  # the batch size used (config.batch_size, or fewer for a small set)


def fit_batch_size(n_images: int, wanted: int) -> int:
    """The batch size a run uses: `wanted`, lowered to the number of images for a small set."""
    return max(1, min(int(wanted), int(n_images)))


def _to_uint8_nchw(images) -> "np.ndarray":
    from core.gan.data import ImageSet

    if isinstance(images, ImageSet):
        arr = images.images
    else:
        arr = np.asarray(images)
    if arr.ndim != 4:
        raise GanError(f"training images must be a (N, H, W, 3) or (N, 3, H, W) array, got shape {arr.shape}")
    if arr.shape[-1] == 3 and arr.shape[1] != 3:
        arr = arr.transpose(0, 3, 1, 2)
    if arr.dtype != np.uint8:
        raise GanError(f"training images must be uint8, got {arr.dtype}")
    return np.ascontiguousarray(arr)


def _sample_grid(G, conditions, z, device) -> "Image.Image":
    import torch

    from core.gan.generate import make_grid, to_uint8

    with torch.no_grad():
        c = torch.as_tensor(conditions, dtype=torch.float32, device=device)
        P, S = c.shape[0], z.shape[0]
        imgs = G(z.to(device).repeat(P, 1), c.repeat_interleave(S, dim=0))
    return make_grid(to_uint8(imgs), ncol=S)


def train(
    images,
    conditions: np.ndarray,
    config: GanConfig,
    out_dir: Path,
    *,
    model_id: str = "unknown",
    sample_conditions: Optional[np.ndarray] = None,
    sample_prompts: Optional[list[str]] = None,
    resume: bool = False,
    metrics_fn: Optional[Callable[[Any, int], dict]] = None,
    on_progress: Optional[Callable[..., None]] = None,
    cancel: Optional[threading.Event] = None,
) -> TrainResult:
    """Train (or resume) a conditional GAN on uint8 images with one condition row per image.

    `model_id` names the embedding space of `conditions`; checkpoints refuse other backends.
    `metrics_fn(G_ema, epoch) -> dict` adds evaluation columns to the log at each epoch end.
    """
    import torch

    from core.device import pick_device
    from models.gan import Discriminator, GanArch, Generator, contrastive_loss, diff_augment, ema_update, hinge_d_loss, hinge_g_loss, make_arch

    out_dir = Path(out_dir)
    if isinstance(images, (list, tuple)) and images and hasattr(images[0], "convert"):
        from core.gan.data import images_to_set

        images = images_to_set(images, config.resolution)  # PIL images of any size and mode
    x_all = _to_uint8_nchw(images)
    cond = np.asarray(conditions, dtype=np.float32)
    n = x_all.shape[0]
    if cond.ndim != 2 or cond.shape[0] != n:
        raise GanError(f"conditions must be (N, D) with N = {n} images, got shape {cond.shape}")
    if x_all.shape[2] != config.resolution or x_all.shape[3] != config.resolution:
        raise GanError(f"training images are {x_all.shape[2]}x{x_all.shape[3]} but the config asks for {config.resolution} px; resize them first (core.gan.data)")
    if n < 2:
        raise GanError(f"{n} training image(s): a GAN needs at least 2 (the discriminator compares pairs); add images")
    batch_size = fit_batch_size(n, config.batch_size)
    for name in ("recon", "mode_seeking"):
        value = getattr(config, name)
        if not (value >= 0 and math.isfinite(value)):
            raise GanError(f"{name} weight must be a finite number >= 0 (0 turns the term off), got {value}")
    cond = cond / np.maximum(np.linalg.norm(cond, axis=1, keepdims=True), 1e-12)
    arch = make_arch(config.preset, resolution=config.resolution, cond_dim=cond.shape[1])

    meta = {
        "format_version": FORMAT_VERSION,
        "model_id": model_id,
        "cond_dim": int(cond.shape[1]),
        "resolution": config.resolution,
        "n_images": n,
        "batch_size": batch_size,
        "arch": arch.to_dict(),
        "config": asdict(config),
    }
    ckpt_dir, sample_dir = out_dir / "checkpoints", out_dir / "output"
    previous = latest_checkpoint(out_dir)
    run_json = out_dir / "run.json"
    if (previous or run_json.exists()) and not resume:
        raise GanError(f"run folder '{out_dir}' already holds a training run; pass resume=True (--resume) to continue it, or choose another run name. Nothing was overwritten")
    if resume and run_json.exists():
        old = json.loads(run_json.read_text(encoding="utf-8"))
        for key in ("model_id", "cond_dim", "resolution", "n_images"):
            if old.get(key) != meta[key]:
                raise GanError(
                    f"cannot resume run '{out_dir.name}': it was trained with {key}={old.get(key)!r}, now {key}={meta[key]!r}. "
                    "Resume with the same backend, resolution and images, or start a new run name. Nothing was overwritten"
                )
        old_preset = (old.get("config") or {}).get("preset")
        if old_preset != config.preset:
            raise GanError(f"cannot resume run '{out_dir.name}': it was trained with preset {old_preset!r}, now {config.preset!r}; resume with preset {old_preset!r} or start a new run name")
        # The run keeps the architecture it was started with, even if the preset changed since.
        try:
            arch = GanArch(**old["arch"])
        except (TypeError, ValueError, KeyError) as exc:
            raise GanError(f"cannot resume run '{out_dir.name}': run.json has an unreadable architecture ({exc}); start a new run name") from None
        meta["arch"] = arch.to_dict()

    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    device = pick_device(config.device)
    use_amp = config.amp and device.startswith("cuda")
    torch.manual_seed(config.seed)  # initial weights depend on the seed only
    G, D = Generator(arch).to(device), Discriminator(arch).to(device)
    center = torch.from_numpy(cond.mean(axis=0)).to(device)
    G.cond_center.copy_(center)
    D.cond_center.copy_(center)
    G_ema = Generator(arch).to(device)
    G_ema.load_state_dict(G.state_dict())
    G_ema.eval().requires_grad_(False)
    opt_g = torch.optim.Adam(G.parameters(), lr=config.lr_g, betas=config.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=config.lr_d, betas=config.betas)

    steps_per_epoch = n // batch_size
    total_steps = steps_per_epoch * config.epochs
    step, log_rows = 0, []
    if resume and previous:
        state = torch.load(ckpt_dir / previous["state"], map_location=device, weights_only=True)
        gen = torch.load(ckpt_dir / previous["generator"], map_location=device, weights_only=True)
        G.load_state_dict(gen["generator"])
        G_ema.load_state_dict(gen["generator_ema"])
        D.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        step = int(state["step"])
        log_rows = [r for r in state.get("log", []) if r.get("step", 0) <= step]
    _write_json(run_json, meta)

    # Fixed prompts and fixed noise for the per-epoch grid: the same picture every epoch.
    if sample_conditions is None:
        _, first = np.unique(cond.round(4), axis=0, return_index=True)
        sample_conditions = cond[np.sort(first)[:8]]
    sample_conditions = np.asarray(sample_conditions, dtype=np.float32)
    sample_z = torch.randn(config.sample_noise, arch.z_dim, generator=torch.Generator().manual_seed(config.seed + 7))

    x_all_t = torch.from_numpy(x_all)
    cond_t = torch.from_numpy(cond)
    perm_epoch, perm = -1, None
    started, step_at_start = time.monotonic(), step
    acc: dict[str, list[float]] = {k: [] for k in ("loss_d", "loss_g", "d_real", "d_fake", "d_mismatch")}
    stopped_early = False

    # "Best" needs a number that is cheap and comparable across epochs: the L1 between the EMA
    # generator's images and the photos their conditions came from (fixed noise, fixed photos).
    score_idx = torch.arange(min(n, 32))
    score_z = torch.randn(len(score_idx), arch.z_dim, generator=torch.Generator().manual_seed(config.seed + 11))

    def sample_l1() -> float:
        with torch.no_grad():
            fake = G_ema(score_z.to(device), torch.from_numpy(cond[score_idx.numpy()]).to(device)).float()
            return float((fake - (torch.from_numpy(x_all[score_idx.numpy()]).to(device).float() / 127.5 - 1.0)).abs().mean())

    def save(tag: str, score: Optional[float] = None) -> Path:
        epoch_done = step // steps_per_epoch
        gen_name, state_name = f"generator_{tag}.pth", f"state_{tag}.pth"
        _atomic_torch_save({"meta": {**meta, "step": step, "epoch": epoch_done}, "generator": G.state_dict(), "generator_ema": G_ema.state_dict()}, ckpt_dir / gen_name)
        _atomic_torch_save({"step": step, "discriminator": D.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "log": log_rows}, ckpt_dir / state_name)
        _write_json(ckpt_dir / "latest.json", {"generator": gen_name, "state": state_name, "step": step, "epoch": epoch_done})
        checkpoints.update_best(ckpt_dir, gen_name, epoch=epoch_done, step=step, score=score)
        checkpoints.prune(ckpt_dir, keep_every=config.keep_every, budget_bytes=int(config.checkpoint_budget_mb * 2**20))
        return ckpt_dir / gen_name

    last_gen: Optional[Path] = ckpt_dir / previous["generator"] if (resume and previous) else None
    G.train()
    D.train()
    while step < total_steps:
        if cancel is not None and cancel.is_set():
            stopped_early = True
            break
        if config.max_seconds is not None and time.monotonic() - started >= config.max_seconds:
            stopped_early = True
            break
        epoch, i = divmod(step, steps_per_epoch)
        if epoch != perm_epoch:
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch))
            perm_epoch = epoch
        idx = perm[i * batch_size:(i + 1) * batch_size]
        torch.manual_seed(config.seed * 1_000_003 + step)  # noise, perturbation and augmentation of this step
        x = (x_all_t[idx].to(device).float() / 127.5 - 1.0)
        c = cond_t[idx].to(device)
        c = torch.nn.functional.normalize(c + config.cond_noise * torch.randn_like(c), dim=1)
        z = torch.randn(x.shape[0], arch.z_dim, device=device)
        aug = lambda t: diff_augment(t, config.augment)  # noqa: E731
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            fake = G(z, c)
            phi_real, phi_fake = D.features(aug(x)), D.features(aug(fake.detach()))
            d_real, d_fake = D.score(phi_real, c).float(), D.score(phi_fake, c).float()
            # The mismatch score reuses the real images' features: one D pass fewer per step.
            d_mis = D.score(phi_real, c.roll(1, dims=0)).float() if config.mismatch else None
            loss_d = hinge_d_loss(d_real, d_fake, d_mis)
            if config.contrastive:
                loss_d = loss_d + config.contrastive * contrastive_loss(D, phi_real.float(), c, config.temperature)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            phi = D.features(aug(fake))
            loss_g = hinge_g_loss(D.score(phi, c).float())
            if config.contrastive:
                loss_g = loss_g + config.contrastive * contrastive_loss(D, phi.float(), c, config.temperature)
            if config.recon:
                loss_g = loss_g + config.recon * (fake.float() - x).abs().mean()
            if config.mode_seeking:
                # MSGAN (Mao et al. 2019): a second noise draw for half the batch, same conditions;
                # the loss falls as the image distance per unit of noise distance grows.
                h = x.shape[0] // 2
                z2 = torch.randn(h, arch.z_dim, device=device)
                fake2 = G(z2, c[:h])
                ratio = (fake[:h].float() - fake2.float()).abs().mean() / (z[:h] - z2).abs().mean()
                loss_g = loss_g + config.mode_seeking / (ratio + 1e-5)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        # Warm-up keeps early EMA samples from being a blur of the random initialisation.
        ema_update(G_ema, G, min(config.ema_decay, (1 + step) / (10 + step)))
        step += 1

        for k, v in (("loss_d", loss_d), ("loss_g", loss_g), ("d_real", d_real.mean()), ("d_fake", d_fake.mean()), ("d_mismatch", d_mis.mean() if d_mis is not None else None)):
            if v is not None:
                acc[k].append(float(v.detach()))
        elapsed = time.monotonic() - started
        rate = (step - step_at_start) / max(elapsed, 1e-9)
        if not math.isfinite(float(loss_d.detach())) or not math.isfinite(float(loss_g.detach())):
            raise GanError(f"training diverged at step {step} (loss is not finite); lower the learning rate or resume from an earlier checkpoint")
        if step % config.log_every == 0 or step % steps_per_epoch == 0:
            row = {"step": step, "epoch": step / steps_per_epoch, "steps_per_s": round(rate, 4), "elapsed_s": round(elapsed, 2)}
            row.update({k: round(float(np.mean(v)), 5) for k, v in acc.items() if v})
            acc = {k: [] for k in acc}
            log_rows.append(row)
            if step % steps_per_epoch != 0:
                _write_log(out_dir / "train_log.csv", log_rows)
        if step % steps_per_epoch == 0:
            epoch_done = step // steps_per_epoch
            G_ema.eval()
            grid = _sample_grid(G_ema, sample_conditions, sample_z, device)
            from core.gan.generate import save_png_atomic

            save_png_atomic(grid, sample_dir / f"sample_epoch_{epoch_done}.png")
            if metrics_fn is not None:
                log_rows[-1].update(metrics_fn(G_ema, epoch_done))
            score = sample_l1()
            log_rows[-1]["sample_l1"] = round(score, 5)
            last_gen = save(f"epoch_{epoch_done}", score)
            _write_log(out_dir / "train_log.csv", log_rows)
        if on_progress:
            on_progress(step, total_steps, epoch=step / steps_per_epoch, loss_d=float(loss_d.detach()), loss_g=float(loss_g.detach()), steps_per_s=rate)

    if stopped_early and step > 0 and (last_gen is None or latest_checkpoint(out_dir)["step"] != step):
        last_gen = save(f"step_{step}")
        _write_log(out_dir / "train_log.csv", log_rows)
    seconds = time.monotonic() - started
    return TrainResult(out_dir, step, step // steps_per_epoch, step >= total_steps, last_gen, seconds, (step - step_at_start) / max(seconds, 1e-9), log_rows,
                       batch_size=batch_size)
