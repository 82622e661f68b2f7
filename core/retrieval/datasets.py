"""Datasets for retrieval evaluation: class folders, CIFAR-10 (python format), VOC2007, shapes.

Every loader returns a `RetrievalDataset` of lazily loaded `Item`s; two items are relevant to
each other when they share a label (VOC images carry several labels).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Optional, Sequence

import numpy as np
from PIL import Image

DatasetKind = Literal["shapes", "folders", "cifar10", "voc2007"]
DATASET_KINDS: tuple[str, ...] = ("shapes", "folders", "cifar10", "voc2007")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class DatasetError(ValueError):
    """A dataset path or layout that cannot be read; the message says what to do."""


@dataclass(frozen=True)
class Item:
    """One image of a dataset; `load()` returns it as RGB (may raise core.images.ImageError)."""

    id: str
    labels: tuple[str, ...]
    loader: Callable[[], Image.Image] = field(repr=False, compare=False)
    bbox: Optional[tuple[int, int, int, int]] = None  # known only for generated shapes

    def load(self) -> Image.Image:
        """The image as RGB."""
        return self.loader()


@dataclass
class RetrievalDataset:
    name: str
    items: list[Item]

    def __len__(self) -> int:
        return len(self.items)

    @property
    def classes(self) -> list[str]:
        """Sorted distinct labels."""
        return sorted({lab for it in self.items for lab in it.labels})

    def split(self, n_queries: int, *, seed: int = 0) -> tuple[list[Item], list[Item]]:
        """(queries, gallery): queries drawn round-robin over classes so every class is asked about."""
        if len(self.items) < 2:
            raise DatasetError(f"dataset '{self.name}' has {len(self.items)} image(s); retrieval needs at least 2")
        n_queries = max(1, min(n_queries, len(self.items) - 1))
        rng = np.random.default_rng(seed)
        by_class: dict[str, list[int]] = {}
        for i in rng.permutation(len(self.items)):
            by_class.setdefault(self.items[i].labels[0] if self.items[i].labels else "", []).append(int(i))
        picked: list[int] = []
        queues = [q for q in by_class.values()]
        while len(picked) < n_queries:
            progressed = False
            for q in queues:
                # Keep at least one item of the class in the gallery so its queries have an answer.
                if len(q) > 1 and len(picked) < n_queries:
                    picked.append(q.pop())
                    progressed = True
            if not progressed:
                break
        chosen = set(picked)
        queries = [self.items[i] for i in picked]
        gallery = [it for i, it in enumerate(self.items) if i not in chosen]
        return queries, gallery


def relevant(a: Sequence[str], b: Sequence[str]) -> bool:
    """Two items are relevant to each other when they share a label."""
    return bool(set(a) & set(b))


def _file_loader(path: Path) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        from core.images import load_rgb

        return load_rgb(path)

    return load


def load_shapes(n: int = 180, *, image_size: int = 64, seed: int = 0) -> RetrievalDataset:
    """The generated shapes set (label = colour_shape); needs no files."""
    from core.shapes import iter_samples

    items = []
    for i, s in enumerate(iter_samples(n, image_size=image_size, seed=seed)):
        img = s.image
        items.append(Item(id=f"shapes/{i:06d}", labels=(s.label,), loader=lambda img=img: img, bbox=s.bbox))
    return RetrievalDataset(name=f"shapes-{n}", items=items)


def load_class_folders(root: Path, *, limit_per_class: Optional[int] = None) -> RetrievalDataset:
    """`root/<class>/<image>` (the crawler's layout); files are decoded only when used."""
    from core.images import IMAGE_EXTENSIONS

    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"class-folder dataset '{root}' is not a folder; pass a folder holding one sub-folder per class")
    items = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in class_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        for p in files[:limit_per_class]:
            items.append(Item(id=str(p.relative_to(root)), labels=(class_dir.name,), loader=_file_loader(p)))
    if not items:
        raise DatasetError(f"no images found under '{root}/<class>/'; expected one sub-folder per class with .jpg/.png files inside")
    return RetrievalDataset(name=f"folders:{root.name}", items=items)


def _cifar_root(root: Path) -> Path:
    root = Path(root).expanduser()
    for cand in (root, root / "cifar-10-batches-py"):
        if (cand / "batches.meta").is_file():
            return cand
    raise DatasetError(
        f"'{root}' holds no CIFAR-10 python batches (batches.meta, data_batch_1..5, test_batch); "
        "point at the extracted 'cifar-10-batches-py' folder"
    )


def _read_cifar_pickle(path: Path) -> dict:
    import pickle

    # pickle only for this one known file format (the official CIFAR-10 python release, as read
    # by torchvision); never for arbitrary files. Users point this at their own downloaded copy.
    with open(path, "rb") as fh:
        return pickle.load(fh, encoding="bytes")


def load_cifar10(root: Path, *, split: Literal["test", "train"] = "test", limit: Optional[int] = None) -> RetrievalDataset:
    """CIFAR-10 in torchvision's on-disk python format; `limit` keeps the first N images."""
    root = _cifar_root(root)
    meta = _read_cifar_pickle(root / "batches.meta")
    names = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in meta.get(b"label_names", CIFAR10_CLASSES)]
    files = ["test_batch"] if split == "test" else [f"data_batch_{i}" for i in range(1, 6)]
    items: list[Item] = []
    for fname in files:
        path = root / fname
        if not path.is_file():
            raise DatasetError(f"CIFAR-10 file '{path}' is missing; re-extract the archive")
        batch = _read_cifar_pickle(path)
        try:
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            labels = list(batch[b"labels"])
        except (KeyError, ValueError) as exc:
            raise DatasetError(f"CIFAR-10 file '{path}' is not in the python batch format ({exc})") from None
        for j, (arr, lab) in enumerate(zip(data, labels)):
            if limit is not None and len(items) >= limit:
                break
            items.append(Item(id=f"cifar10/{fname}/{j}", labels=(names[int(lab)],), loader=lambda a=arr: Image.fromarray(a, "RGB")))
    return RetrievalDataset(name=f"cifar10-{split}", items=items)


def _voc_root(root: Path) -> Path:
    root = Path(root).expanduser()
    for cand in (root, root / "VOC2007", root / "VOCdevkit" / "VOC2007"):
        if (cand / "Annotations").is_dir() and (cand / "JPEGImages").is_dir():
            return cand
    raise DatasetError(f"'{root}' is not a VOC2007 folder; expected JPEGImages/, Annotations/ and ImageSets/Main/ inside")


def _voc_labels(xml_path: Path, *, include_difficult: bool) -> tuple[str, ...]:
    import xml.etree.ElementTree as ET

    text = xml_path.read_bytes()
    # Annotations never need a DTD; refusing one rules out entity-expansion bombs.
    if b"<!DOCTYPE" in text or b"<!ENTITY" in text:
        raise DatasetError(f"VOC annotation '{xml_path}' declares a DTD/entities; refusing to parse it")
    try:
        tree = ET.fromstring(text)
    except ET.ParseError as exc:
        raise DatasetError(f"VOC annotation '{xml_path}' is not valid XML ({exc})") from None
    names = []
    for obj in tree.iter("object"):
        if not include_difficult and (obj.findtext("difficult") or "0").strip() == "1":
            continue
        name = (obj.findtext("name") or "").strip()
        if name:
            names.append(name)
    return tuple(sorted(set(names)))


def load_voc2007(root: Path, *, split: str = "test", limit: Optional[int] = None, include_difficult: bool = False) -> RetrievalDataset:
    """PASCAL VOC2007 (JPEGImages/, Annotations/*.xml, ImageSets/Main/<split>.txt); labels = object classes."""
    root = _voc_root(root)
    if not re.fullmatch(r"[A-Za-z0-9_]+", split):
        raise DatasetError(f"VOC split name {split!r} is invalid; use train, val, trainval or test")
    listing = root / "ImageSets" / "Main" / f"{split}.txt"
    if not listing.is_file():
        raise DatasetError(f"VOC split file '{listing}' is missing; choose a split that exists (train, val, trainval, test)")
    items: list[Item] = []
    skipped = 0
    for line in listing.read_text(encoding="utf-8").split():
        if limit is not None and len(items) >= limit:
            break
        xml_path = root / "Annotations" / f"{line}.xml"
        jpg = root / "JPEGImages" / f"{line}.jpg"
        if not xml_path.is_file() or not jpg.is_file():
            skipped += 1
            continue
        labels = _voc_labels(xml_path, include_difficult=include_difficult)
        if labels:
            items.append(Item(id=f"voc2007/{line}", labels=labels, loader=_file_loader(jpg)))
    if not items:
        raise DatasetError(f"no usable VOC images in '{root}' for split '{split}' ({skipped} listed ids had no jpg/xml)")
    return RetrievalDataset(name=f"voc2007-{split}", items=items)


def load_dataset(kind: str, path: Optional[Path] = None, *, limit: Optional[int] = None, n: int = 180, seed: int = 0, split: Optional[str] = None) -> RetrievalDataset:
    """Dispatch on `kind` (shapes, folders, cifar10, voc2007) with a clear error for anything else."""
    if kind == "shapes":
        return load_shapes(n, seed=seed)  # `limit` is for data on disk; shapes are sized by `n`
    if kind not in DATASET_KINDS:
        raise DatasetError(f"unknown dataset kind {kind!r}; choose one of {', '.join(DATASET_KINDS)}")
    if path is None:
        raise DatasetError(f"dataset kind '{kind}' needs a path to the data on disk")
    if kind == "folders":
        return load_class_folders(path, limit_per_class=limit)
    if kind == "cifar10":
        return load_cifar10(path, split=split or "test", limit=limit)
    return load_voc2007(path, split=split or "test", limit=limit)
