"""The public evaluation set of real photos in tests/data/eval: typed records, validated on load.

    from bench.evalset import load_eval_photos, load_queries, load_chat_questions

Every loader checks its file and raises `EvalSetError` naming the file and the row (CSV line or
JSON index) that is wrong, so a bad hand edit is found at once rather than as a skewed metric.
No streamlit, no models: tests, benches and colleagues' code can all import it.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

EVAL_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "eval"

SCENES = (
    "kitchen", "bathroom", "bedroom", "living room", "office", "street", "building", "beach", "mountain",
    "forest", "field", "sky/space", "water", "restaurant", "shop", "studio/indoor", "other",
)
# The annotator's topics (core/annotate/prompts.toml [topics.prompts]) plus its fallback "other".
TOPICS = (
    "food", "animal", "people", "nature", "architecture", "interior", "vehicle", "object", "texture",
    "science", "other",
)
SENTIMENTS = ("negative", "neutral", "positive")
CHAT_KINDS = ("count", "list", "filter")
PHOTO_COLUMNS = (
    "filename", "source", "author", "licence", "people", "has_text", "text", "scene", "objects", "topics",
    "sentiment",
)


class EvalSetError(ValueError):
    """A malformed evaluation-set file; the message names the file and the row."""


@dataclass(frozen=True)
class EvalPhoto:
    """One photo with its provenance and hand labels."""

    filename: str
    path: Path
    source: str
    author: str
    licence: str
    people: int  # persons visible, 0 = none
    has_text: bool
    text: str  # the words visible, "" when none
    scene: str  # one of SCENES
    objects: tuple[str, ...]
    topics: tuple[str, ...]  # each one of TOPICS
    sentiment: Literal["negative", "neutral", "positive"]


@dataclass(frozen=True)
class EvalQuery:
    """A text query a user would type and every photo relevant to it."""

    query: str
    relevant: tuple[str, ...]


@dataclass(frozen=True)
class ChatQuestion:
    """A Chat question with its expected answer; `follow_up_of` is the index of the question it continues."""

    question: str
    kind: Literal["count", "list", "filter"]
    expected_count: int
    expected_photos: tuple[str, ...]
    follow_up_of: int | None = None


# The hand labels' indoor scenes (README: outdoors = any scene except rooms, studio/indoor, restaurant,
# shop, and the station hall, which is labelled "building").
INDOOR_SCENES = ("kitchen", "bathroom", "bedroom", "living room", "office", "studio/indoor", "restaurant", "shop")
INDOOR_PHOTOS = ("grand_central_station.jpg",)


def hand_setting(photo: EvalPhoto) -> str:
    """"indoor" or "outdoor" by the README's definition of the hand labels."""
    return "indoor" if photo.scene in INDOOR_SCENES or photo.filename in INDOOR_PHOTOS else "outdoor"


def hand_portrait(photo: EvalPhoto) -> bool:
    """A portrait by the README's definition: one person who fills the frame (scene `studio/indoor` or
    the close-up `other`), not one person within a wider scene (a field, a street)."""
    return photo.people == 1 and photo.scene in ("studio/indoor", "other")


def is_grey(photo: EvalPhoto) -> bool:
    """Stored in grey: all three channels equal (the README's "black and white")."""
    import numpy as np
    from PIL import Image

    with Image.open(photo.path) as im:
        a = np.asarray(im.convert("RGB")).astype(np.int16)
    return bool(np.abs(a[..., 0] - a[..., 1]).max() == 0 and np.abs(a[..., 1] - a[..., 2]).max() == 0)


def _split(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.split(";") if p.strip())


def _photo_from_row(row: dict[str, str], where: str, photo_dir: Path) -> EvalPhoto:
    def need(col: str) -> str:
        value = (row.get(col) or "").strip()
        if not value:
            raise EvalSetError(f"{where}: column '{col}' is empty; fill it in (see tests/data/eval/README.md)")
        return value

    def as_int(col: str, lo: int, hi: int | None = None) -> int:
        raw = need(col)
        try:
            value = int(raw)
        except ValueError:
            raise EvalSetError(f"{where}: column '{col}' must be a whole number, got {raw!r}") from None
        if value < lo or (hi is not None and value > hi):
            raise EvalSetError(f"{where}: column '{col}' must be in [{lo}, {hi if hi is not None else '...'}], got {value}")
        return value

    filename = need("filename")
    if "/" in filename or "\\" in filename:
        raise EvalSetError(f"{where}: filename {filename!r} must be a bare name inside {photo_dir}")
    path = photo_dir / filename
    if not path.is_file():
        raise EvalSetError(f"{where}: photo {filename!r} is not in {photo_dir}; add it or remove the row")
    has_text = bool(as_int("has_text", 0, 1))
    text = (row.get("text") or "").strip()
    if has_text and not text:
        raise EvalSetError(f"{where}: has_text is 1 but column 'text' is empty; write the visible words")
    scene = need("scene")
    if scene not in SCENES:
        raise EvalSetError(f"{where}: scene {scene!r} is not one of {', '.join(SCENES)}")
    topics = _split(need("topics"))
    bad = [t for t in topics if t not in TOPICS]
    if bad:
        raise EvalSetError(f"{where}: topic(s) {bad} not in the annotator's list {', '.join(TOPICS)}")
    sentiment = need("sentiment")
    if sentiment not in SENTIMENTS:
        raise EvalSetError(f"{where}: sentiment {sentiment!r} is not one of {', '.join(SENTIMENTS)}")
    return EvalPhoto(
        filename=filename, path=path, source=need("source"), author=need("author"), licence=need("licence"),
        people=as_int("people", 0), has_text=has_text, text=text, scene=scene, objects=_split(need("objects")),
        topics=topics, sentiment=sentiment,  # type: ignore[arg-type]
    )


def load_eval_photos(csv_path: Path | None = None, photo_dir: Path | None = None) -> list[EvalPhoto]:
    """Read photos.csv; every row must name an existing photo and carry a licence and valid labels."""
    csv_path = Path(csv_path or EVAL_DIR / "photos.csv")
    photo_dir = Path(photo_dir or csv_path.parent / "photos")
    if not csv_path.is_file():
        raise EvalSetError(f"{csv_path}: file not found")
    with csv_path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in PHOTO_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise EvalSetError(f"{csv_path}: header lacks column(s) {missing}; expected {','.join(PHOTO_COLUMNS)}")
        photos: list[EvalPhoto] = []
        seen: set[str] = set()
        for row in reader:
            where = f"{csv_path}, line {reader.line_num}"
            if None in row:  # more cells than header columns: an unquoted comma
                raise EvalSetError(f"{where}: more cells than columns; quote cells that contain commas")
            photo = _photo_from_row(row, where, photo_dir)
            if photo.filename in seen:
                raise EvalSetError(f"{where}: photo {photo.filename!r} is listed twice")
            seen.add(photo.filename)
            photos.append(photo)
    return photos


def _load_json_list(path: Path) -> list[Any]:
    if not path.is_file():
        raise EvalSetError(f"{path}: file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise EvalSetError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}): {e.msg}") from None
    if not isinstance(data, list):
        raise EvalSetError(f"{path}: expected a JSON list of objects at the top level")
    return data


def _names(value: Any, where: str, key: str, known: set[str] | None) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise EvalSetError(f"{where}: '{key}' must be a list of photo filenames")
    if known is not None:
        unknown = [v for v in value if v not in known]
        if unknown:
            raise EvalSetError(f"{where}: '{key}' names photo(s) not in photos.csv: {unknown}")
    if len(set(value)) != len(value):
        raise EvalSetError(f"{where}: '{key}' lists a photo twice")
    return tuple(value)


def _known_names(path: Path, photos: list[EvalPhoto] | None) -> set[str]:
    """File names a query or question may name: `photos`, or the photos.csv beside `path`."""
    return {p.filename for p in (photos if photos is not None else load_eval_photos(path.parent / "photos.csv"))}


def load_queries(path: Path | None = None, photos: list[EvalPhoto] | None = None) -> list[EvalQuery]:
    """Read queries.json; each query needs text and >= 1 relevant photo that exists in photos.csv."""
    path = Path(path or EVAL_DIR / "queries.json")
    known = _known_names(path, photos)
    out: list[EvalQuery] = []
    for i, item in enumerate(_load_json_list(path)):
        where = f"{path}, entry {i}"
        if not isinstance(item, dict) or not isinstance(item.get("query"), str) or not item["query"].strip():
            raise EvalSetError(f"{where}: needs a non-empty 'query' string")
        relevant = _names(item.get("relevant"), where, "relevant", known)
        if not relevant:
            raise EvalSetError(f"{where}: query {item['query']!r} has no relevant photo; every query needs >= 1")
        out.append(EvalQuery(query=item["query"].strip(), relevant=relevant))
    return out


def load_chat_questions(path: Path | None = None, photos: list[EvalPhoto] | None = None) -> list[ChatQuestion]:
    """Read chat_questions.json; counts must match the photo lists and follow-ups point backwards."""
    path = Path(path or EVAL_DIR / "chat_questions.json")
    known = _known_names(path, photos)
    out: list[ChatQuestion] = []
    for i, item in enumerate(_load_json_list(path)):
        where = f"{path}, entry {i}"
        if not isinstance(item, dict) or not isinstance(item.get("question"), str) or not item["question"].strip():
            raise EvalSetError(f"{where}: needs a non-empty 'question' string")
        kind = item.get("kind")
        if kind not in CHAT_KINDS:
            raise EvalSetError(f"{where}: 'kind' must be one of {', '.join(CHAT_KINDS)}, got {kind!r}")
        expected = _names(item.get("expected_photos"), where, "expected_photos", known)
        count = item.get("expected_count")
        if not isinstance(count, int) or isinstance(count, bool) or count != len(expected):
            raise EvalSetError(f"{where}: 'expected_count' {count!r} must equal the {len(expected)} expected_photos")
        follow = item.get("follow_up_of")
        if follow is not None and (not isinstance(follow, int) or isinstance(follow, bool) or not 0 <= follow < i):
            raise EvalSetError(f"{where}: 'follow_up_of' must be the index of an earlier question, got {follow!r}")
        out.append(ChatQuestion(question=item["question"].strip(), kind=kind, expected_count=count,
                                expected_photos=expected, follow_up_of=follow))
    return out
