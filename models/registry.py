"""Builds the active backend from settings and says why it was chosen.

Adding a backend = one adapter file + one entry in `create_backend`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from core.settings import Settings
    from models.base import VisionLanguageBackend

BACKENDS = ("auto", "bundled", "clip")


@dataclass(frozen=True)
class BackendChoice:
    """Which backend `auto` (or the user) picked, and the sentence that explains it."""

    name: str
    reason: str


def clip_spec(settings: "Settings"):
    from models.clip import ClipSpec

    return ClipSpec(
        model=settings.clip_model,
        pretrained=settings.clip_pretrained or None,
        checkpoint=settings.clip_checkpoint,
        cache_dir=settings.models_dir / "clip",
    )


def choose_backend(settings: "Settings") -> BackendChoice:
    """Decide without loading any model; cheap enough for `--help`-time status lines."""
    if settings.backend not in BACKENDS:
        raise ValueError(f"unknown backend '{settings.backend}'; choose one of {', '.join(BACKENDS)}")
    if settings.backend == "bundled":
        return BackendChoice("bundled", "set explicitly (PHOTOLORE_BACKEND=bundled)")
    from models.clip import local_weights

    spec = clip_spec(settings)
    what = str(spec.checkpoint) if spec.checkpoint else f"{spec.model}/{spec.pretrained}"
    found = local_weights(spec)
    if settings.backend == "clip":
        if found is None:
            raise FileNotFoundError(
                f"PHOTOLORE_BACKEND=clip but the CLIP weights {what} are not on disk; "
                "run `python -m core models pull` first, or use the bundled backend"
            )
        return BackendChoice("clip", f"set explicitly; weights {found}")
    if found is not None:
        return BackendChoice("clip", f"auto: CLIP weights for {what} found at {found}")
    return BackendChoice("bundled", f"auto: no local CLIP weights for {what} (run `python -m core models pull` to add them); using the bundled offline models")


def create_backend(settings: "Settings") -> tuple["VisionLanguageBackend", BackendChoice]:
    """Load the chosen backend once; callers cache the result."""
    from core.device import pick_device
    from core.threads import limit_threads

    limit_threads(settings.threads)  # before any model builds its thread pools
    choice = choose_backend(settings)
    device = pick_device(settings.device)
    if choice.name == "clip":
        from models.clip import ClipBackend

        return ClipBackend(clip_spec(settings), device=device), choice
    from models.bundled import BundledBackend

    return BundledBackend(device=device, runtime=settings.image_runtime, cache_dir=settings.models_dir,
                          people=settings.people_detector, detectors_dir=settings.detectors_dir,
                          detectors=settings.detectors), choice
