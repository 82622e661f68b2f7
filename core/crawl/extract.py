"""Find image URLs and links in an HTML page (static or rendered)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from core.crawl.net import normalize_url

IMAGE_URL_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".avif", ".heic", ".heif")


@dataclass(frozen=True)
class ImageRef:
    url: str
    alt: str = ""


@dataclass
class PageContent:
    title: str
    images: list[ImageRef]
    links: list[str]


def _srcset_best(srcset: str) -> Optional[str]:
    """The largest candidate of a srcset (by width or density descriptor)."""
    best, best_score = None, -1.0
    for part in re.split(r",\s+(?=\S)", srcset.strip()):
        bits = part.strip().split()
        if not bits:
            continue
        url, score = bits[0].rstrip(","), 1.0
        if len(bits) > 1:
            desc = bits[1].lower()
            try:
                score = float(desc[:-1]) if desc[-1] in "wx" else 1.0
            except ValueError:
                score = 1.0
        if score > best_score:
            best, best_score = url, score
    return best


def _usable(raw: Optional[str]) -> bool:
    return bool(raw) and not raw.strip().lower().startswith(("data:", "javascript:", "blob:"))


def _img_source(tag) -> Optional[str]:
    """One URL per <img>: the biggest srcset candidate, else lazy-loading attributes, else src."""
    for attr in ("srcset", "data-srcset"):
        raw = tag.get(attr)
        if _usable(raw):
            best = _srcset_best(raw)
            if _usable(best):
                return best
    for attr in ("data-src", "data-original", "data-lazy-src", "src"):
        raw = tag.get(attr)
        if _usable(raw):
            return raw
    return None


def looks_like_image_url(url: str) -> bool:
    return urlsplit(url).path.lower().endswith(IMAGE_URL_EXTENSIONS)


def _clean(text: Optional[str], limit: int = 500) -> str:
    return " ".join((text or "").split())[:limit]


def extract(html: str | bytes, base_url: str) -> PageContent:
    """Images (img/srcset/data-src, picture sources, og:image, links to image files) and page links."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    base_tag = soup.find("base", href=True)
    base = normalize_url(base_tag["href"], base_url) if base_tag else None
    base = base or base_url
    title = _clean(soup.title.string if soup.title and soup.title.string else "")
    images: list[ImageRef] = []
    seen: set[str] = set()

    def add(raw: Optional[str], alt: str = "") -> None:
        if not _usable(raw):
            return
        url = normalize_url(raw, base)
        if url and url not in seen:
            seen.add(url)
            images.append(ImageRef(url, _clean(alt)))

    for meta in soup.find_all("meta"):
        prop = (meta.get("property") or meta.get("name") or "").lower()
        if prop in ("og:image", "og:image:url", "og:image:secure_url", "twitter:image"):
            add(meta.get("content"), _clean(title))
    handled = set()
    for picture in soup.find_all("picture"):
        best, best_score = None, -1.0
        img = picture.find("img")
        candidates = [s.get("srcset") for s in picture.find_all("source")]
        for srcset in candidates:
            if not _usable(srcset):
                continue
            for part in re.split(r",\s+(?=\S)", srcset.strip()):
                bits = part.split()
                score = float(bits[1][:-1]) if len(bits) > 1 and bits[1][-1:] in ("w", "x") and bits[1][:-1].replace(".", "", 1).isdigit() else 1.0
                if bits and score > best_score:
                    best, best_score = bits[0].rstrip(","), score
        if img is not None:
            handled.add(id(img))
            if best is None:
                best = _img_source(img)
        add(best, img.get("alt", "") if img is not None else "")
    for img in soup.find_all("img"):
        if id(img) not in handled:
            add(_img_source(img), img.get("alt", "") or img.get("title", ""))
    links: list[str] = []
    link_seen: set[str] = set()
    for a in soup.find_all("a", href=True):
        url = normalize_url(a["href"], base)
        if not url:
            continue
        if looks_like_image_url(url):
            add(url, a.get("title", "") or a.get_text(" ", strip=True))
        elif url not in link_seen:
            link_seen.add(url)
            links.append(url)
    return PageContent(title=title, images=images, links=links)
