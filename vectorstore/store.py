"""A thin layer over Chroma: one collection per (model, space), cosine distance, ids = photo ids.

Embeddings of different models are never mixed: the collection name carries the backend's
`model_id`. We always pass our own vectors and `embedding_function=None`, because Chroma's
default embedding function downloads an ONNX model at run time.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Optional, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from core.settings import Settings

_PREFIX = "photos"
_UPSERT_CHUNK = 2048  # below Chroma's max batch size on every backend


@dataclass
class Hit:
    id: str
    score: float  # cosine similarity, 1 = identical direction
    metadata: dict[str, Any]


def collection_name(model_id: str, space: str) -> str:
    """A Chroma-valid name (3-512 chars of [A-Za-z0-9._-], alphanumeric ends)."""
    name = f"{_PREFIX}-{model_id}-{space}"
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name)
    name = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", name)
    return name[:512]


# Keys kept as Chroma arrays (Chroma >= 1.0), which a `where` can test with $contains: the detected
# objects that Search filters on. Other lists stay comma-joined strings, the form their readers know.
# An array must be non-empty and of one type: the facts write [""] for "nothing detected".
ARRAY_KEYS = frozenset({"detected"})


def clean_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """Chroma metadata values must be str/int/float/bool (or, for ARRAY_KEYS, a list of str); drop None, join lists."""
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if value is None:
            continue
        if key in ARRAY_KEYS and isinstance(value, (list, tuple)):
            value = [str(v) for v in value] or [""]
        elif isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, (np.integer,)):
            value = int(value)
        elif isinstance(value, (np.floating,)):
            value = float(value)
        elif not isinstance(value, (str, int, float, bool)):
            value = str(value)
        out[str(key)] = value
    return out


class VectorStore:
    def __init__(self, client: Any, *, ef_search: int = 128):
        self.client = client
        self.ef_search = ef_search
        self._collections: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: "Settings") -> "VectorStore":
        """Embedded PersistentClient by default; a Chroma server when CHROMA_HOST is set."""
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        if settings.chroma_host:
            try:
                client = chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings)
                client.heartbeat()
            except Exception as exc:
                raise ConnectionError(
                    f"cannot reach the Chroma server at {settings.chroma_host}:{settings.chroma_port} ({exc}); "
                    "start it with `chroma run --host HOST --port PORT --path DIR`, or unset CHROMA_HOST to use the embedded store"
                ) from exc
        else:
            settings.chroma_path.mkdir(parents=True, exist_ok=True)
            client = chromadb.PersistentClient(path=str(settings.chroma_path), settings=chroma_settings)
        return cls(client)

    def collection(self, model_id: str, space: str):
        name = collection_name(model_id, space)
        with self._lock:
            col = self._collections.get(name)
            if col is None:
                col = self.client.get_or_create_collection(
                    name,
                    configuration={"hnsw": {"space": "cosine", "ef_search": self.ef_search, "ef_construction": 128}},
                    metadata={"model_id": model_id, "space": space},
                    embedding_function=None,
                )
                self._collections[name] = col
            return col

    def upsert(self, model_id: str, space: str, ids: Sequence[str], embeddings: np.ndarray, metadatas: Sequence[dict]) -> None:
        """Idempotent write: the same id twice leaves one entry."""
        if len(ids) == 0:
            return
        col = self.collection(model_id, space)
        emb = np.asarray(embeddings, dtype=np.float32)
        for i in range(0, len(ids), _UPSERT_CHUNK):
            col.upsert(
                ids=list(ids[i:i + _UPSERT_CHUNK]),
                embeddings=emb[i:i + _UPSERT_CHUNK],
                metadatas=[clean_metadata(m) or {"_": 0} for m in metadatas[i:i + _UPSERT_CHUNK]],
            )

    def ids_present(self, model_id: str, space: str, ids: Sequence[str]) -> set[str]:
        if len(ids) == 0:
            return set()
        return set(self.collection(model_id, space).get(ids=list(ids), include=[])["ids"])

    def get_metadata(self, model_id: str, space: str, ids: Sequence[str]) -> dict[str, dict]:
        if len(ids) == 0:
            return {}
        res = self.collection(model_id, space).get(ids=list(ids), include=["metadatas"])
        return {i: dict(m or {}) for i, m in zip(res["ids"], res["metadatas"])}

    def update_embeddings(self, model_id: str, space: str, ids: Sequence[str], embeddings: np.ndarray) -> None:
        """Replace the vectors of existing ids, keeping their metadata (annotations live there too)."""
        present = self.ids_present(model_id, space, ids)
        keep = [k for k, i in enumerate(ids) if i in present]
        if keep:
            self.collection(model_id, space).update(ids=[ids[k] for k in keep], embeddings=np.asarray(embeddings, dtype=np.float32)[keep])

    def query(self, model_id: str, space: str, vector: np.ndarray, k: int = 10, where: Optional[dict] = None,
              metadata: bool = True) -> list[Hit]:
        """The `k` nearest ids; `metadata=False` skips reading their metadata (most of a lookup's
        time in embedded Chroma) for callers that rank only."""
        # No count() first: Chroma returns fewer results when it holds fewer (or none), and the
        # extra call cost a round trip per query (an HTTP request with a Chroma server).
        res = self.collection(model_id, space).query(
            query_embeddings=np.asarray(vector, dtype=np.float32).reshape(1, -1),
            n_results=k,
            where=where or None,
            include=["distances", "metadatas"] if metadata else ["distances"],
        )
        metas = res["metadatas"][0] if metadata else [None] * len(res["ids"][0])
        return [Hit(id=i, score=float(1.0 - d), metadata=dict(m or {})) for i, d, m in zip(res["ids"][0], res["distances"][0], metas)]

    def get_embeddings(self, model_id: str, space: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        res = self.collection(model_id, space).get(ids=list(ids), include=["embeddings"])
        return {i: np.asarray(e, dtype=np.float32) for i, e in zip(res["ids"], res["embeddings"])}

    def ids(self, model_id: str, space: str) -> set[str]:
        col = self.collection(model_id, space)
        out: set[str] = set()
        total, offset, page = col.count(), 0, 10_000
        while offset < total:
            out.update(col.get(include=[], limit=page, offset=offset)["ids"])
            offset += page
        return out

    def count(self, model_id: str, space: str) -> int:
        return int(self.collection(model_id, space).count())

    def delete(self, model_id: str, space: str, ids: Iterable[str]) -> None:
        ids = list(ids)
        if ids:
            self.collection(model_id, space).delete(ids=ids)

    def update_metadata(self, ids: Sequence[str], metadatas: Sequence[dict]) -> int:
        """Merge metadata into every collection that holds these ids (annotations, for filters)."""
        updated = 0
        for col in self.client.list_collections():
            name = col.name if hasattr(col, "name") else str(col)
            if not name.startswith(_PREFIX + "-"):
                continue
            col = self.client.get_collection(name, embedding_function=None)
            present = col.get(ids=list(ids), include=["metadatas"])
            by_id = dict(zip(present["ids"], present["metadatas"]))
            keep = [(i, {**(by_id[i] or {}), **clean_metadata(m)}) for i, m in zip(ids, metadatas) if i in by_id]
            if keep:
                col.update(ids=[i for i, _ in keep], metadatas=[m for _, m in keep])
                updated += len(keep)
        return updated

    def collections(self) -> list[str]:
        return sorted(c.name if hasattr(c, "name") else str(c) for c in self.client.list_collections())
