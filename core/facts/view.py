"""How readers present and filter photo facts: plain-text lines for details, `where` filters for search.

Both work on the flat keys of `PhotoFacts.index_metadata()`, the same keys Chat counts on, so a
filter on the Search page and a count in Chat select the same photos.
"""
from __future__ import annotations

from typing import Optional, Sequence

from core.facts import PhotoFacts

SETTINGS = ("indoor", "outdoor")
PEOPLE_COUNTS = ("none", "1", "2", "3 or more")  # the people-count choices of the Search filter and the CLI


def facts_where(*, has_people: Optional[bool] = None, has_text: Optional[bool] = None, scene: Optional[str] = None,
                setting: Optional[str] = None, monochrome: Optional[bool] = None, objects: Sequence[str] = (),
                people: Optional[str] = None) -> Optional[dict]:
    """A Chroma `where` for the given facts filters (None = not filtered); None when nothing is filtered.

    `setting` is "indoor" or "outdoor" (photos whose setting could not be told match neither);
    `monochrome` True = black and white photos; `objects`: COCO labels the detector found, all of
    them ("dog", "car"); `people`: one of PEOPLE_COUNTS. Photos without facts (not yet reindexed)
    carry none of these keys, so any filter leaves them out."""
    from models.objects import COCO_LABELS

    parts: list[dict] = []
    for label in objects:
        value = str(label).strip().lower()
        if value not in COCO_LABELS or value == "person":
            raise ValueError(f"object filter {label!r} is not one of the detector's objects (models/objects.py COCO_LABELS; "
                             "use the people filter for persons)")
        parts.append({"detected": {"$contains": value}})
    if people is not None:
        if people not in PEOPLE_COUNTS:
            raise ValueError(f"people filter {people!r} is not one of {', '.join(PEOPLE_COUNTS)}")
        n = PEOPLE_COUNTS.index(people)
        parts.append({"people_count": {"$gte": 3}} if n == 3 else {"people_count": n})
    if has_people is not None:
        parts.append({"has_people": bool(has_people)})
    if has_text is not None:
        parts.append({"has_text": bool(has_text)})
    if scene:
        parts.append({"scene": str(scene).strip()})
    if setting:
        value = str(setting).strip().lower()
        if value not in SETTINGS:
            raise ValueError(f"setting filter {setting!r} is not one of {', '.join(SETTINGS)}")
        parts.append({"setting": value})
    if monochrome is not None:
        parts.append({"monochrome": bool(monochrome)})
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _people_phrase(n: int) -> str:
    return "none found" if n <= 0 else ("1 person" if n == 1 else f"{n} people")


def facts_lines(facts: Optional[PhotoFacts]) -> list[str]:
    """What the photo details show, as plain text lines (rendered with st.text, never as HTML/Markdown)."""
    if facts is None:
        return ["No facts yet: run Reindex (Library page) or `python -m core reindex`."]
    lines = []
    if facts.caption:
        lines.append(f"Described as: {facts.caption}")
    faces = f" ({facts.faces} face{'s' if facts.faces != 1 else ''})" if facts.faces else ""
    faces += ", a portrait" if facts.is_portrait else ""
    lines.append(f"People: {_people_phrase(facts.people)}{faces}")
    if facts.text:
        lines.append("Text read: " + " | ".join(f'"{t}" ({c:.2f})' for t, c in facts.text))
    else:
        lines.append("Text read: " + ("none" if facts.text_checked else "not checked"))
    lines.append(f"Scene: {facts.scene} ({facts.scene_score:.2f})" if facts.scene else "Scene: unknown")
    if facts.detector:
        counted = facts.object_counts
        lines.append("Detected (" + facts.detector + "): " + (", ".join(f"{k} x{n}" if n > 1 else k for k, n in counted.items())
                                                             if counted else "nothing sure"))
    if facts.expressions:
        lines.append("Expressions: " + ", ".join(f"{e} ({p:.2f})" for e, p in facts.expressions))
    if facts.objects:
        lines.append("Objects: " + ", ".join(f"{w} ({p:.2f})" for w, p in facts.objects[:12]))
    if facts.setting:
        lines.append(f"Setting: {facts.setting} ({facts.setting_score:.2f})")
    if facts.landscape:
        lines.append("Seen from colours and layout: " + ", ".join(f"{w} ({p:.2f})" for w, p in facts.landscape))
    if facts.monochrome:
        lines.append("Colours: black and white")
    elif facts.colours:
        lines.append("Colours: " + ", ".join(facts.colours))
    for note in facts.notes:
        lines.append(f"Note: {note}")
    lines.append(f"Facts version: {facts.version}")
    return lines


# One colour per kind, so people stand out from things; boxes at least 2 px, scaled with the photo.
_BOX_COLOURS = {"person": (255, 64, 64)}
_THING_COLOUR = (255, 200, 0)


def draw_detections(image, facts: Optional[PhotoFacts]):
    """A copy of the photo with the sure detections' boxes and labels drawn on it (None when there are none).
    The photo must be the one the facts were made from, as load_rgb gives it (EXIF orientation applied)."""
    from PIL import ImageDraw, ImageFont

    from core.facts.detected import sure

    boxes = sure(facts.detections) if facts is not None else []
    if not boxes:
        return None
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    W, H = out.size
    width = max(2, round(max(W, H) / 300))
    font = ImageFont.load_default(size=max(12, round(max(W, H) / 45)))
    for label, score, (x1, y1, x2, y2) in boxes:
        colour = _BOX_COLOURS.get(label, _THING_COLOUR)
        rect = (x1 * W, y1 * H, x2 * W, y2 * H)
        draw.rectangle(rect, outline=colour, width=width)
        text = f"{label} {score:.2f}"
        above = rect[1] - font.size - 2 * width  # the label sits above the box, or inside it at the top edge
        tx, ty = rect[0] + width, (above if above >= 0 else rect[1] + width)
        bbox = draw.textbbox((tx, ty), text, font=font)
        draw.rectangle((bbox[0] - 2, bbox[1] - 2, bbox[2] + 2, bbox[3] + 2), fill=colour)
        draw.text((tx, ty), text, fill=(0, 0, 0), font=font)
    return out
