"""The effective annotations copied into the search index's metadata (Chroma), and counts in the same keys.

The keys are a contract shared with Dashboards and Chat (core/annotate/README.md):
`sentiment`, `sentiment_score`, `sentiment_caption`, `sentiment_image`, `topics`
(comma-separated), a `topic_<name>` boolean per topic, the six scores and `concept_text`.
"""
from __future__ import annotations

from typing import Any, Iterable

from core.annotate.prompts import DIMENSIONS, topic_key
from core.annotations.effective import effective_records
from core.catalog import Catalog

_CONTRACT_KEYS = ["sentiment", "sentiment_score", "sentiment_caption", "sentiment_image", "topics", *DIMENSIONS, "concept_text"]


def chroma_metadata(rec: dict, topic_universe: Iterable[str] = ()) -> dict[str, Any]:
    """The contract keys for one effective record; a topic not held is written False so filters stay exact."""
    meta: dict[str, Any] = {}
    for k in ("sentiment", "sentiment_caption", "sentiment_image"):
        if rec.get(k):
            meta[k] = rec[k]
    if rec.get("sentiment_score") is not None:
        meta["sentiment_score"] = float(rec["sentiment_score"])
    if rec.get("topics"):
        meta["topics"] = ",".join(rec["topics"])
    for t in set(topic_universe) | set(rec.get("topics") or []):
        meta[topic_key(t)] = t in (rec.get("topics") or [])
    for d in DIMENSIONS:
        if rec.get(d) is not None:
            meta[d] = int(rec[d])
    if rec.get("concept_text"):
        meta["concept_text"] = rec["concept_text"]
    return meta


def count_photos(catalog: Catalog, where: dict[str, Any]) -> int:
    """Photos whose effective values equal every `where` item (e.g. {"sentiment": "positive", "topic_food": True})."""
    n = 0
    for rec in effective_records(catalog):
        meta = chroma_metadata(rec)  # so `where` speaks the index's keys, topic_<name> included
        if all(meta.get(k, rec.get(k)) == v for k, v in where.items()):
            n += 1
    return n


def sync_chroma(catalog: Catalog, store, photo_ids: Iterable[str], *, topic_universe: Iterable[str] = ()) -> int:
    """Copy effective values into the Chroma metadata of these photos; keys with no value any more are removed."""
    ids = list(photo_ids)
    if not ids:
        return 0
    recs = effective_records(catalog, ids)
    universe = set(topic_universe)
    for r in recs:
        universe |= set(r["topics"] or [])
    metas = [chroma_metadata(r, universe) for r in recs]
    held = _current_topic_keys(store, ids)
    for r, m in zip(recs, metas):
        for k in held.get(r["photo_id"], ()):
            m.setdefault(k, False)  # a topic dropped since the last sync must stop matching filters
    stale = {r["photo_id"]: [k for k in _CONTRACT_KEYS if k not in m] for r, m in zip(recs, metas)}
    _drop_metadata_keys(store, stale)
    return store.update_metadata([r["photo_id"] for r in recs], metas)


def _photo_collections(store):
    for name in store.collections():
        if name.startswith("photos-"):
            yield store.client.get_collection(name, embedding_function=None)


def _current_topic_keys(store, ids: list[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for col in _photo_collections(store):
        got = col.get(ids=ids, include=["metadatas"])
        for i, m in zip(got["ids"], got["metadatas"]):
            out.setdefault(i, set()).update(k for k in (m or {}) if k.startswith("topic_"))
    return out


def _drop_metadata_keys(store, stale: dict[str, list[str]]) -> None:
    # VectorStore.update_metadata merges and drops None values, so it cannot delete a key;
    # Chroma's own update deletes a key given None, which is what a reset needs.
    stale = {i: ks for i, ks in stale.items() if ks}
    if not stale:
        return
    for col in _photo_collections(store):
        present = set(col.get(ids=list(stale), include=[])["ids"])
        ids = [i for i in stale if i in present]
        if ids:
            col.update(ids=ids, metadatas=[{k: None for k in stale[i]} for i in ids])
