"""Caption dataset loaders: Flickr8k, COCO captions, CSV, the library's own captions, and shapes.

Every loader returns a `CaptionSet`: one `CaptionItem` per image (all its reference captions
together) plus the `problems` it skipped (missing images, empty captions, non-UTF-8 lines,
malformed lines), each naming the file and line so the user can fix it. Images are only
checked for existence here; images that fail to decode are reported when they are first read.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional

from PIL import Image

DATASET_KINDS = ("shapes", "csv", "flickr8k", "coco", "library")


@dataclass
class Problem:
    """One skipped input: where it was and what was wrong."""

    source: str
    line: Optional[int]
    message: str
    text: str = ""

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        snippet = f" [{self.text[:80]}]" if self.text else ""
        return f"{where}: {self.message}{snippet}"


@dataclass
class CaptionItem:
    """One image and all its reference captions."""

    image_id: str
    captions: list[str]
    path: Optional[Path] = None
    image: Optional[Image.Image] = field(default=None, repr=False)  # in-memory images (shapes)

    def load(self, max_pixels: int = 64_000_000) -> Image.Image:
        """The RGB image; raises `core.images.ImageError` when the file cannot be decoded."""
        if self.image is not None:
            return self.image.convert("RGB")
        from core.images import load_rgb

        return load_rgb(Path(self.path), max_pixels=max_pixels)


@dataclass
class CaptionSet:
    name: str
    items: list[CaptionItem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def n_captions(self) -> int:
        return sum(len(i.captions) for i in self.items)

    def captions(self) -> list[str]:
        return [c for i in self.items for c in i.captions]


def _lines(path: Path, problems: list[Problem]) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) for every line that is valid UTF-8; bad lines become problems."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise FileNotFoundError(f"cannot read caption file {path}: {exc.strerror or exc}") from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    for no, line in enumerate(raw.split(b"\n"), start=1):
        line = line.rstrip(b"\r")
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(Problem(str(path), no, f"not valid UTF-8 (byte {exc.start}); re-save the file as UTF-8",
                                    line.decode("utf-8", "replace")))
            continue
        yield no, text


def _add(groups: dict[str, CaptionItem], problems: list[Problem], source: str, no: Optional[int],
         image_id: str, path: Path, caption: str) -> None:
    caption = " ".join(caption.split())
    if not caption:
        problems.append(Problem(source, no, f"empty caption for image '{image_id}'"))
        return
    if "\ufffd" in caption:
        problems.append(Problem(source, no, "caption contains undecodable characters; re-save the file as UTF-8", caption))
        return
    if image_id not in groups:
        if not path.is_file():
            problems.append(Problem(source, no, f"image file not found: {path}", caption))
            return
        groups[image_id] = CaptionItem(image_id=image_id, captions=[], path=path)
    groups[image_id].captions.append(caption)


def load_flickr8k(token_file: Path, image_dir: Path) -> CaptionSet:
    """`Flickr8k.token.txt` lines `<image>.jpg#<n>\\t<caption>` + the image folder."""
    token_file, image_dir = Path(token_file), Path(image_dir)
    problems: list[Problem] = []
    groups: dict[str, CaptionItem] = {}
    src = str(token_file)
    for no, line in _lines(token_file, problems):
        if not line.strip():
            continue
        if "\t" not in line:
            problems.append(Problem(src, no, "expected '<image>#<n><TAB><caption>'", line))
            continue
        key, caption = line.split("\t", 1)
        name = key.split("#", 1)[0].strip()
        if not name:
            problems.append(Problem(src, no, "no image name before the tab", line))
            continue
        _add(groups, problems, src, no, name, image_dir / name, caption)
    return CaptionSet("flickr8k", list(groups.values()), problems)


def load_coco(captions_json: Path, image_dir: Path) -> CaptionSet:
    """COCO captions JSON (`images[{id, file_name}]`, `annotations[{image_id, caption}]`) + image folder."""
    captions_json, image_dir = Path(captions_json), Path(image_dir)
    src = str(captions_json)
    problems: list[Problem] = []
    raw = captions_json.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.append(Problem(src, line, "not valid UTF-8; undecodable characters were replaced and their captions skipped"))
        text = raw.decode("utf-8", "replace")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{captions_json} is not valid JSON (line {exc.lineno}: {exc.msg}); is it a COCO captions file?") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("annotations"), list) or not isinstance(doc.get("images"), list):
        raise ValueError(f"{captions_json} lacks the COCO 'images' and 'annotations' lists")
    files: dict[object, str] = {}
    for img in doc["images"]:
        if isinstance(img, dict) and "id" in img and img.get("file_name"):
            files[img["id"]] = str(img["file_name"])
        else:
            problems.append(Problem(src, None, "image entry without 'id' and 'file_name'", json.dumps(img)[:80]))
    groups: dict[str, CaptionItem] = {}
    for n, ann in enumerate(doc["annotations"]):
        where = f"{src} annotations[{n}]"
        if not isinstance(ann, dict) or "image_id" not in ann:
            problems.append(Problem(where, None, "annotation without 'image_id'"))
            continue
        name = files.get(ann["image_id"])
        if name is None:
            problems.append(Problem(where, None, f"image_id {ann['image_id']!r} is not listed in 'images'"))
            continue
        caption = ann.get("caption")
        if not isinstance(caption, str):
            problems.append(Problem(where, None, f"caption is missing or not text for image '{name}'"))
            continue
        _add(groups, problems, where, None, name, image_dir / name, caption)
    return CaptionSet("coco", list(groups.values()), problems)


def load_csv(csv_path: Path, image_dir: Optional[Path] = None) -> CaptionSet:
    """A CSV with a `filename,caption` header; filenames relative to `image_dir` (default: the CSV's folder)."""
    csv_path = Path(csv_path)
    image_dir = Path(image_dir) if image_dir is not None else csv_path.parent
    src = str(csv_path)
    problems: list[Problem] = []
    groups: dict[str, CaptionItem] = {}
    header_seen = False
    for no, line in _lines(csv_path, problems):
        if not line.strip():
            continue
        try:
            row = next(csv.reader([line]))
        except csv.Error as exc:
            problems.append(Problem(src, no, f"malformed CSV line: {exc}", line))
            continue
        if not header_seen:
            header_seen = True
            if [c.strip().lower() for c in row[:2]] != ["filename", "caption"]:
                raise ValueError(f"{csv_path}: the first line must be the header 'filename,caption' (found {line[:60]!r})")
            continue
        if len(row) < 2:
            problems.append(Problem(src, no, "expected two columns 'filename,caption'", line))
            continue
        name, caption = row[0].strip(), ",".join(row[1:])
        if not name:
            problems.append(Problem(src, no, "empty filename", line))
            continue
        _add(groups, problems, src, no, name, image_dir / name, caption)
    return CaptionSet("csv", list(groups.values()), problems)


def load_library(store_path: Path) -> CaptionSet:
    """The library's own saved captions (the JSON store written by `service.save_captions`)."""
    store_path = Path(store_path)
    problems: list[Problem] = []
    if not store_path.is_file():
        return CaptionSet("library", [], [Problem(str(store_path), None, "no saved captions yet; caption some photos first")])
    groups: dict[str, CaptionItem] = {}
    entries = json.loads(store_path.read_text("utf-8"))
    for photo_id, entry in sorted(entries.items()):
        path = Path(entry.get("path", ""))
        for caption in entry.get("captions", []):
            _add(groups, problems, str(store_path), None, photo_id, path, caption.get("text", ""))
    return CaptionSet("library", list(groups.values()), problems)


# Caption sources written by machines (backend descriptions, our own captioner): training on
# them would teach a captioner to imitate a tagger, so the library loader skips them by default.
AUTO_CAPTION_PREFIXES = ("bundled:", "clip:", "captioner:")


def load_catalog(catalog_path: Path | str, *, include_auto: bool = False, limit: int = 1_000_000) -> CaptionSet:
    """Captions stored in the library catalog (an SQLite file or a postgresql:// URL: settings.catalog_target);
    machine captions only with `include_auto`."""
    from core.catalog import Catalog
    from core.db import is_database_url, redact_url

    if not is_database_url(catalog_path):
        catalog_path = Path(catalog_path)
        if not catalog_path.is_file():
            raise FileNotFoundError(f"no library catalog at {catalog_path}; add photos on the Library page first")
    problems: list[Problem] = []
    groups: dict[str, CaptionItem] = {}
    where = redact_url(catalog_path) if isinstance(catalog_path, str) else str(catalog_path)
    for photo in Catalog(catalog_path).list_photos(limit=limit):
        if not photo.caption:
            continue
        if not include_auto and (photo.caption_source or "").startswith(AUTO_CAPTION_PREFIXES):
            continue
        _add(groups, problems, where, None, photo.id, Path(photo.path), photo.caption)
    if not groups:
        problems.append(Problem(where, None, "no human-written captions in the library (machine captions are skipped)"))
    return CaptionSet("library", list(groups.values()), problems)


def load_shapes(n: int = 600, *, image_size: int = 64, seed: int = 0) -> CaptionSet:
    """The procedural shapes set, in memory: 3 reference sentences per image."""
    from core.shapes import iter_samples

    items = [CaptionItem(image_id=f"shapes-{seed}-{i:06d}", captions=s.captions, image=s.image)
             for i, s in enumerate(iter_samples(n, image_size=image_size, seed=seed))]
    return CaptionSet("shapes", items, [])


def load_dataset(kind: str, *, path: Optional[Path] = None, image_dir: Optional[Path] = None,
                 n: int = 600, seed: int = 0) -> CaptionSet:
    """One entry point for the CLI and the page; `kind` is one of DATASET_KINDS."""
    if kind == "shapes":
        return load_shapes(n, seed=seed)
    if path is None:
        raise ValueError(f"dataset '{kind}' needs a path to its caption file (library: the catalog, <data>/catalog.sqlite)")
    if kind == "csv":
        return load_csv(path, image_dir)
    if kind == "library":
        return load_library(path) if Path(path).suffix == ".json" else load_catalog(path)
    if image_dir is None:
        raise ValueError(f"dataset '{kind}' needs the folder holding its images (image_dir)")
    if kind == "flickr8k":
        return load_flickr8k(path, image_dir)
    if kind == "coco":
        return load_coco(path, image_dir)
    raise ValueError(f"unknown dataset kind {kind!r}; choose one of {DATASET_KINDS}")


def split_by_image(items: Iterable[CaptionItem], *, val: float = 0.1, test: float = 0.1,
                   seed: int = 0) -> dict[str, list[CaptionItem]]:
    """Seeded train/val/test split of images (never of captions: all of an image's captions stay together)."""
    import numpy as np

    items = list(items)
    ids = sorted({i.image_id for i in items})
    order = np.random.default_rng(seed).permutation(len(ids))
    n_test = int(round(len(ids) * test))
    n_val = int(round(len(ids) * val))
    if len(ids) >= 3:
        n_test, n_val = max(n_test, 1 if test > 0 else 0), max(n_val, 1 if val > 0 else 0)
    which = {}
    for rank, idx in enumerate(order):
        which[ids[idx]] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    out: dict[str, list[CaptionItem]] = {"train": [], "val": [], "test": []}
    for item in items:
        out[which[item.image_id]].append(item)
    return out


def split_from_ids(items: Iterable[CaptionItem], ids: dict[str, list[str]]) -> dict[str, list[CaptionItem]]:
    """Rebuild a split saved in a checkpoint; images not in it go to train."""
    where = {i: name for name, group in ids.items() for i in group}
    out: dict[str, list[CaptionItem]] = {"train": [], "val": [], "test": []}
    for item in items:
        out[where.get(item.image_id, "train")].append(item)
    return out
