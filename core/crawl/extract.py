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


_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_CSS_BACKGROUND = re.compile(r"background(?:-image)?\s*:\s*([^;}]*)", re.I)
_CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)'"\s]*))\s*\)""", re.I)
_REFRESH_URL = re.compile(r"""^\s*\d*(?:\.\d*)?\s*[;,]?\s*url\s*=\s*(['"]?)(?P<url>.*?)\1\s*$""", re.I | re.S)


def css_background_urls(css: str) -> list[str]:
    """URLs in `background` / `background-image` declarations (several url()s, quoted or not)."""
    urls = []
    for decl in _CSS_BACKGROUND.finditer(_CSS_COMMENT.sub(" ", css)):
        for m in _CSS_URL.finditer(decl.group(1)):
            raw = next((g for g in m.groups() if g is not None), "")
            if raw.strip():
                urls.append(raw.strip())
    return urls


def meta_refresh_target(content: str) -> Optional[str]:
    """The URL of `<meta http-equiv="refresh" content="0; url=...">`, if it names one."""
    m = _REFRESH_URL.match(content or "")
    return m.group("url").strip() if m and m.group("url").strip() else None


def _clean(text: Optional[str], limit: int = 500) -> str:
    return " ".join((text or "").split())[:limit]


def extract(html: str | bytes, base_url: str) -> PageContent:
    """Images (img/srcset/data-src, picture sources, og:image, CSS backgrounds, links to image files) and
    page links (a href, meta refresh). HTML comments are not parsed into tags, so nothing in them counts."""
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
    # Hero and gallery images set in CSS: style attributes, then <style> blocks (relative to the page / <base>).
    for tag in soup.find_all(style=True):
        for raw in css_background_urls(tag["style"]):
            add(raw, tag.get("aria-label", "") or tag.get("title", ""))
    for block in soup.find_all("style"):
        for raw in css_background_urls(block.get_text()):
            add(raw)
    links: list[str] = []
    link_seen: set[str] = set()
    hrefs = [(a["href"], a.get("title", "") or a.get_text(" ", strip=True)) for a in soup.find_all("a", href=True)]
    for meta in soup.find_all("meta", attrs={"http-equiv": re.compile("^refresh$", re.I)}):
        target = meta_refresh_target(meta.get("content", ""))
        if target:
            hrefs.append((target, ""))  # followed like a link: depth, scope and address checks apply
    for href, text in hrefs:
        url = normalize_url(href, base)
        if not url:
            continue
        if looks_like_image_url(url):
            add(url, text)
        elif url not in link_seen:
            link_seen.add(url)
            links.append(url)
    return PageContent(title=title, images=images, links=links)
