"""Classical two-stage retrieval: hand-made features, a bag of visual words, PCA and k-means.

Per image: SIFT descriptors (OpenCV) quantised against a k-means vocabulary into a tf-idf bag
of visual words, a HOG vector (scikit-image), an HSV colour histogram and a shape histogram
(edge-orientation histogram + log Hu moments). The blocks are L2-normalised, weighted and
concatenated into one descriptor.

Stage 1 projects descriptors with PCA and assigns the query to its nearest coarse k-means
clusters (an inverted file); stage 2 ranks only the members of those clusters by cosine
similarity of the full descriptors, `candidate_batch` at a time. Build and query are separate;
an index is saved as .npz + .json (no pickle) and reloaded without the training images.
"""
from __future__ import annotations

import hashlib
import io
import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Literal, Optional, Sequence

import numpy as np
from PIL import Image

from core.retrieval import Cancelled, Hit, noop_progress
from core.retrieval.storage import load_index, save_index

SCHEMA_VERSION = 1
SiftMode = Literal["dense", "keypoints"]


@dataclass(frozen=True)
class ClassicalConfig:
    """Parameters of the classical pipeline (defaults suit small photos and the shapes set)."""

    vocab_size: int = 64  # bag-of-features size: SIFT visual words
    n_clusters: int = 8  # stage-1 coarse clusters
    n_probe: int = 2  # clusters searched per query (more: better recall, slower)
    candidate_batch: int = 256  # stage-2 candidates scored per batch
    pca_dim: int = 32
    image_size: int = 128  # images are resized to this square before feature extraction
    sift: SiftMode = "dense"  # dense grid works on small/flat images where keypoints are few
    dense_step: int = 16
    hog_cell: int = 16
    colour_bins: tuple[int, int, int] = (12, 3, 3)  # H, S, V
    min_saturation: int = 64  # HSV saturation (0-255) below which a pixel counts as grey
    edge_bins: int = 16
    # bovw, hog, colour, shape. HOG is position-bound, so it gets little say by default.
    weights: tuple[float, float, float, float] = (1.0, 0.25, 2.0, 1.0)
    threshold: float = 0.8  # cosine similarity above which a result counts as a match
    max_vocab_descriptors: int = 20000  # SIFT descriptors sampled to train the vocabulary
    seed: int = 0

    def validate(self) -> "ClassicalConfig":
        """Raise ValueError naming the first bad parameter."""
        for name in ("vocab_size", "n_clusters", "n_probe", "candidate_batch", "pca_dim", "image_size", "dense_step", "hog_cell", "edge_bins"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"classical config: {name} must be >= 1 (got {getattr(self, name)})")
        if self.image_size < 2 * self.hog_cell:
            raise ValueError(f"classical config: image_size ({self.image_size}) must be at least 2 x hog_cell ({self.hog_cell})")
        if self.sift not in ("dense", "keypoints"):
            raise ValueError(f"classical config: sift must be 'dense' or 'keypoints' (got {self.sift!r})")
        return self


@dataclass
class RawFeatures:
    """Per-image features before the vocabulary exists."""

    sift: np.ndarray  # (n_desc, 128) float32, possibly empty
    hog: np.ndarray  # (D_hog,)
    colour: np.ndarray  # (D_col,)
    shape: np.ndarray  # (edge_bins + 7,)


def _prepare(image: Image.Image, size: int) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 and grey uint8 arrays of `size` x `size`."""
    rgb = np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)
    grey = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.uint8)
    return rgb, grey


_SIFT_LOCAL = threading.local()


def _sift():
    import cv2

    if not hasattr(_SIFT_LOCAL, "sift"):
        _SIFT_LOCAL.sift = cv2.SIFT_create()
    return _SIFT_LOCAL.sift


def extract_raw(image: Image.Image, config: ClassicalConfig) -> RawFeatures:
    """Local and global hand-made features of one image."""
    import cv2
    from skimage.feature import hog

    rgb, grey = _prepare(image, config.image_size)
    sift = _sift()
    if config.sift == "dense":
        step = config.dense_step
        kps = [cv2.KeyPoint(float(x), float(y), float(step)) for y in range(step // 2, config.image_size, step) for x in range(step // 2, config.image_size, step)]
        _, desc = sift.compute(grey, kps)
    else:
        _, desc = sift.detectAndCompute(grey, None)
    desc = np.zeros((0, 128), np.float32) if desc is None else desc.astype(np.float32)
    # RootSIFT: Hellinger kernel on SIFT works better with Euclidean k-means.
    if len(desc):
        desc = np.sqrt(desc / np.maximum(desc.sum(axis=1, keepdims=True), 1e-12))

    h = hog(grey, orientations=9, pixels_per_cell=(config.hog_cell, config.hog_cell), cells_per_block=(2, 2), feature_vector=True).astype(np.float32)

    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(np.int32)
    hb, sb, vb = config.colour_bins
    # Hue is noise for washed-out pixels: those go to separate grey-level bins instead, so a
    # greyish background cannot scatter mass over the hue bins that tell colours apart.
    chromatic = hsv[:, 1] >= config.min_saturation
    h_idx = np.minimum(hsv[:, 0] * hb // 180, hb - 1)
    s_idx = np.minimum((hsv[:, 1] - config.min_saturation) * sb // max(256 - config.min_saturation, 1), sb - 1)
    v_idx = np.minimum(hsv[:, 2] * vb // 256, vb - 1)
    col = np.zeros(hb * sb * vb + vb, np.float32)
    np.add.at(col, ((h_idx * sb + s_idx) * vb + v_idx)[chromatic], 1.0)
    np.add.at(col, hb * sb * vb + v_idx[~chromatic], 1.0)
    col /= max(col.sum(), 1e-12)
    col = np.sqrt(col)  # Hellinger: keeps a large background from drowning the object's colour

    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.hypot(gx, gy)
    edges = cv2.Canny(grey, 50, 150)
    ang = (np.arctan2(gy, gx) % np.pi)[edges > 0]  # undirected orientation of edge pixels
    eoh, _ = np.histogram(ang, bins=config.edge_bins, range=(0, np.pi), weights=mag[edges > 0])
    eoh = eoh.astype(np.float32) / max(float(eoh.sum()), 1e-12)
    hu = cv2.HuMoments(cv2.moments(edges, binaryImage=True)).ravel()
    hu = (-np.sign(hu) * np.log10(np.abs(hu) + 1e-30)).astype(np.float32) / 30.0
    shape = np.concatenate([eoh, hu]).astype(np.float32)
    return RawFeatures(sift=desc, hog=h, colour=col, shape=shape)


def kmeans(x: np.ndarray, k: int, *, seed: int = 0, iters: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """(centroids (k, D), assignment (N,)): k-means++ seeding then Lloyd steps, deterministic per seed.

    Plain numpy on purpose: small, predictable on 2 cores, and no OpenMP thread pool to fight
    other processes for the CPU.
    """
    x = np.asarray(x, np.float32)
    rng = np.random.default_rng(seed)
    k = max(1, min(k, len(x)))
    centres = [x[rng.integers(len(x))]]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        probs = d2 / d2.sum() if d2.sum() > 0 else np.full(len(x), 1.0 / len(x))
        centres.append(x[rng.choice(len(x), p=probs)])
        d2 = np.minimum(d2, ((x - centres[-1]) ** 2).sum(1))
    c = np.stack(centres)
    sq = (x ** 2).sum(1, keepdims=True)
    assign = np.zeros(len(x), np.int64)
    for it in range(iters):
        dist = sq - 2 * x @ c.T + (c ** 2).sum(1)[None, :]
        new = dist.argmin(1)
        if it and np.array_equal(new, assign):
            break
        assign = new
        for j in range(k):
            members = x[assign == j]
            if len(members):
                c[j] = members.mean(0)
    return c.astype(np.float32), assign


def _l2(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(n, 1e-12)).astype(np.float32)


def _bovw(desc: np.ndarray, vocab: np.ndarray) -> np.ndarray:
    hist = np.zeros(len(vocab), np.float32)
    if len(desc):
        d2 = (desc ** 2).sum(1, keepdims=True) - 2 * desc @ vocab.T + (vocab ** 2).sum(1)[None, :]
        np.add.at(hist, d2.argmin(1), 1.0)
    return hist


def _encode(raws: Sequence[RawFeatures], vocab: np.ndarray, idf: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """(N, D) descriptors: weighted, block-wise L2-normalised concatenation."""
    bovw = _l2(np.stack([_bovw(r.sift, vocab) for r in raws]) * idf[None, :])
    blocks = [bovw, _l2(np.stack([r.hog for r in raws])), _l2(np.stack([r.colour for r in raws])), _l2(np.stack([r.shape for r in raws]))]
    return _l2(np.concatenate([w * b for w, b in zip(weights, blocks)], axis=1))


def _raw_to_npz(raws: Sequence[RawFeatures]) -> bytes:
    counts = np.array([len(r.sift) for r in raws], np.int64)
    buf = io.BytesIO()
    np.savez(buf, counts=counts, sift=np.concatenate([r.sift for r in raws]) if raws else np.zeros((0, 128), np.float32),
             hog=np.stack([r.hog for r in raws]), colour=np.stack([r.colour for r in raws]), shape=np.stack([r.shape for r in raws]))
    return buf.getvalue()


def _raw_from_npz(path: Path) -> list[RawFeatures]:
    with np.load(path, allow_pickle=False) as z:
        counts, sift = z["counts"], z["sift"]
        starts = np.concatenate([[0], np.cumsum(counts)])
        return [RawFeatures(sift=sift[starts[i]:starts[i + 1]], hog=z["hog"][i], colour=z["colour"][i], shape=z["shape"][i]) for i in range(len(counts))]


@dataclass
class BuildReport:
    """What happened during a build: how many items, which were skipped and why."""

    n_indexed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (item id, reason)


class ClassicalIndex:
    """A built classical index; use `build`, `save`, `load`, `query`."""

    def __init__(self, config: ClassicalConfig, ids: list[str], labels: list[tuple[str, ...]], arrays: dict[str, np.ndarray], report: Optional[BuildReport] = None):
        self.config = config
        self.ids = ids
        self.labels = labels
        self.vocab = arrays["vocab"]  # (V, 128)
        self.idf = arrays["idf"]  # (V,)
        self.centre = arrays["centre"]  # (D,) gallery mean of the raw descriptors
        self.features = arrays["features"]  # (N, D) centred full descriptors, L2-normalised
        self.pca_mean = arrays["pca_mean"]  # (D,)
        self.pca_components = arrays["pca_components"]  # (P, D)
        self.centroids = arrays["centroids"]  # (C, P)
        self.assign = arrays["assign"]  # (N,) cluster of each gallery item
        self.report = report or BuildReport(n_indexed=len(ids))

    # -- build -----------------------------------------------------------------------------
    @classmethod
    def build(cls, items: Sequence, config: ClassicalConfig = ClassicalConfig(), *, on_progress: Callable[..., None] = noop_progress,
              cancel: Optional[threading.Event] = None, work_dir: Optional[Path] = None, chunk_size: int = 64) -> "ClassicalIndex":
        """Index `items` (objects with .id, .labels, .load()) or PIL images.

        With `work_dir`, extracted features are saved per chunk, so a cancelled or killed build
        resumes where it stopped. Unreadable images are skipped and listed in `.report.skipped`.
        """
        config.validate()
        items = list(items)
        if not items:
            raise ValueError("classical index: nothing to index (0 items)")
        total = len(items)
        report = BuildReport()
        raws: list[RawFeatures] = []
        ids: list[str] = []
        labels: list[tuple[str, ...]] = []
        key = hashlib.sha256(json.dumps([asdict(config), [_item_id(it, i) for i, it in enumerate(items)]], default=str).encode()).hexdigest()[:16]
        for start in range(0, total, chunk_size):
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"classical build cancelled after {start}/{total} images; rerun with the same work_dir to resume")
            chunk = items[start:start + chunk_size]
            cache = Path(work_dir) / f"raw-{key}-{start:08d}.npz" if work_dir else None
            meta_cache = cache.with_suffix(".json") if cache else None
            if cache is not None and cache.is_file() and meta_cache.is_file():
                chunk_raws = _raw_from_npz(cache)
                meta = json.loads(meta_cache.read_text())
                chunk_ids, chunk_labels, chunk_skipped = meta["ids"], [tuple(x) for x in meta["labels"]], [tuple(x) for x in meta["skipped"]]
            else:
                chunk_raws, chunk_ids, chunk_labels, chunk_skipped = [], [], [], []
                for j, it in enumerate(chunk):
                    iid = _item_id(it, start + j)
                    try:
                        img = it if isinstance(it, Image.Image) else it.load()
                        chunk_raws.append(extract_raw(img, config))
                    except (ValueError, OSError) as exc:  # ImageError is a ValueError
                        chunk_skipped.append((iid, getattr(exc, "reason", str(exc))))
                        continue
                    chunk_ids.append(iid)
                    chunk_labels.append(tuple(getattr(it, "labels", ())))
                if cache is not None:
                    from core.images import atomic_write_bytes

                    if chunk_raws:
                        atomic_write_bytes(cache, _raw_to_npz(chunk_raws))
                        # The json is written last: its presence marks the chunk complete.
                        atomic_write_bytes(meta_cache, json.dumps({"ids": chunk_ids, "labels": chunk_labels, "skipped": chunk_skipped}).encode())
            raws += chunk_raws
            ids += chunk_ids
            labels += chunk_labels
            report.skipped += chunk_skipped
            on_progress(min(start + chunk_size, total), total, stage="features", skipped=len(report.skipped))
        if not raws:
            raise ValueError(f"classical index: none of the {total} images could be read ({report.skipped[:3]} ...)")

        rng = np.random.default_rng(config.seed)
        all_desc = np.concatenate([r.sift for r in raws]) if any(len(r.sift) for r in raws) else np.zeros((0, 128), np.float32)
        if len(all_desc) > config.max_vocab_descriptors:
            all_desc = all_desc[rng.choice(len(all_desc), config.max_vocab_descriptors, replace=False)]
        n_words = max(1, min(config.vocab_size, len(all_desc)))
        if len(all_desc) >= 1:
            vocab, _ = kmeans(all_desc, n_words, seed=config.seed)
        else:
            vocab = np.zeros((1, 128), np.float32)
        on_progress(total, total, stage="vocabulary")
        # idf of each visual word over the gallery: frequent words (background texture) count less.
        doc_freq = np.zeros(len(vocab), np.float32)
        for r in raws:
            doc_freq[np.unique(_bovw(r.sift, vocab).nonzero()[0])] += 1
        idf = np.log((1 + len(raws)) / (1 + doc_freq)).astype(np.float32) + 1.0
        encoded = _encode(raws, vocab, idf, config.weights)
        # Centre on the gallery mean: what every photo shares (background, flat regions) would
        # otherwise dominate cosine similarity.
        centre = encoded.mean(axis=0)
        features = _l2(encoded - centre)

        n_comp = max(1, min(config.pca_dim, features.shape[0], features.shape[1]))
        pca_mean = features.mean(axis=0)
        # PCA by SVD of the centred gallery: rows of vt are the principal directions.
        _, _, vt = np.linalg.svd(features - pca_mean, full_matrices=False)
        components = vt[:n_comp].astype(np.float32)
        reduced = _l2((features - pca_mean) @ components.T)
        n_clusters = max(1, min(config.n_clusters, len(features)))
        centroids, assign = kmeans(reduced, n_clusters, seed=config.seed)
        on_progress(total, total, stage="clusters")
        report.n_indexed = len(ids)
        arrays = dict(vocab=vocab, idf=idf, centre=centre.astype(np.float32), features=features, pca_mean=pca_mean.astype(np.float32),
                      pca_components=components, centroids=centroids, assign=assign.astype(np.int32))
        return cls(config, ids, labels, arrays, report)

    # -- query -----------------------------------------------------------------------------
    def describe_image(self, image: Image.Image) -> np.ndarray:
        """The (D,) full descriptor of a query image."""
        return _l2(_encode([extract_raw(image, self.config)], self.vocab, self.idf, self.config.weights) - self.centre)[0]

    def candidates(self, descriptor: np.ndarray, k: int) -> np.ndarray:
        """Stage 1: gallery positions in the query's nearest clusters (at least `k` of them when possible)."""
        reduced = _l2(((descriptor - self.pca_mean) @ self.pca_components.T)[None, :])[0]
        d2 = ((self.centroids - reduced[None, :]) ** 2).sum(1)
        order = np.argsort(d2)
        chosen: list[int] = []
        count = 0
        for rank, c in enumerate(order):
            members = np.flatnonzero(self.assign == c)
            chosen.append(int(c))
            count += len(members)
            if rank + 1 >= self.config.n_probe and count >= min(k, len(self.ids)):
                break
        return np.flatnonzero(np.isin(self.assign, chosen))

    def rank(self, image: Image.Image, k: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
        """(positions, scores) of stage-2 ranked candidates, best first; non-candidates are absent."""
        k = len(self.ids) if k is None else k
        desc = self.describe_image(image)
        cand = self.candidates(desc, k)
        scores = np.empty(len(cand), np.float32)
        step = self.config.candidate_batch
        for s in range(0, len(cand), step):
            scores[s:s + step] = self.features[cand[s:s + step]] @ desc
        order = np.argsort(-scores, kind="stable")
        return cand[order], scores[order]

    def query(self, image: Image.Image, k: int = 10) -> list[Hit]:
        """The `k` best gallery items for `image`."""
        pos, scores = self.rank(image, k)
        return [Hit(int(p), self.ids[p], float(s), bool(s >= self.config.threshold), self.labels[p]) for p, s in zip(pos[:k], scores[:k])]

    # -- persistence -----------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        return dict(vocab=self.vocab, idf=self.idf, centre=self.centre, features=self.features, pca_mean=self.pca_mean,
                    pca_components=self.pca_components, centroids=self.centroids, assign=self.assign)

    @property
    def nbytes(self) -> int:
        """Memory held by the index arrays."""
        return int(sum(a.nbytes for a in self.arrays().values()))

    def save(self, directory: Path) -> Path:
        """Write `arrays.npz` then `index.json` atomically; the json names the npz's checksum."""
        meta = {"kind": "classical", "schema": SCHEMA_VERSION, "config": asdict(self.config), "ids": self.ids,
                "labels": [list(l) for l in self.labels], "skipped": self.report.skipped}
        return save_index(directory, "arrays.npz", self.arrays(), meta)

    @classmethod
    def load(cls, directory: Path) -> "ClassicalIndex":
        """Reload a saved index; a clear error when files are missing, foreign or inconsistent."""
        meta, arrays = load_index(directory, "arrays.npz", "classical", SCHEMA_VERSION)
        cfg = meta["config"]
        cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}
        report = BuildReport(n_indexed=len(meta["ids"]), skipped=[tuple(x) for x in meta.get("skipped", [])])
        return cls(ClassicalConfig(**cfg), list(meta["ids"]), [tuple(l) for l in meta["labels"]], arrays, report)


def _item_id(item, i: int) -> str:
    return str(getattr(item, "id", f"image-{i}"))
