"""The heavy objects of a PhotoLore process, built once and passed around."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from core.catalog import Catalog, open_catalog
from core.settings import Settings

if TYPE_CHECKING:  # pragma: no cover
    from models.base import VisionLanguageBackend
    from models.registry import BackendChoice
    from vectorstore.store import VectorStore


@dataclass
class Services:
    settings: Settings
    catalog: Catalog
    store: "VectorStore"
    backend: "VisionLanguageBackend"
    choice: "BackendChoice"


def build_services(settings: Optional[Settings] = None, *, backend: "Optional[VisionLanguageBackend]" = None) -> Services:
    """Catalog + vector store + backend. Pass `backend` to reuse one already loaded (tests, benches)."""
    from models.registry import BackendChoice, create_backend
    from vectorstore.store import VectorStore

    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if backend is None:
        backend, choice = create_backend(settings)
    else:
        choice = BackendChoice(backend.name, "given by the caller")
    return Services(settings, open_catalog(settings), VectorStore.from_settings(settings), backend, choice)
