"""Small rendering helpers. Text from photos, captions and the web is data: escaped, never HTML."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Optional, Sequence

import streamlit as st

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def md_escape(text: object) -> str:
    """Escape Markdown so untrusted text shows literally (no links, images or formatting)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text or ""))


def backend_badge(services) -> None:
    st.caption(f"Backend: **{md_escape(services.choice.name)}** (`{services.backend.model_id}`) — {md_escape(services.choice.reason)}")


def progress_callback(label: str) -> Callable[..., None]:
    """An on_progress(done, total) that drives an st.progress bar."""
    bar = st.progress(0.0, text=label)

    def update(done: int, total: int, **info) -> None:
        extra = "".join(f" · {k} {v}" for k, v in info.items() if k in ("added", "skipped"))
        bar.progress(min(1.0, done / total) if total else 1.0, text=f"{label}: {done}/{total}{extra}")

    return update


@st.dialog("Photo details", width="large")
def photo_dialog(photo, paths: Sequence[str]) -> None:
    if Path(photo.path).exists():
        st.image(photo.path, width="stretch")
    elif photo.thumb_path and Path(photo.thumb_path).exists():
        st.image(photo.thumb_path)
    st.markdown("**Caption:** " + md_escape(photo.caption or "—") + f"  \n*({md_escape(photo.caption_source or 'unknown')})*")
    if photo.tags:
        st.markdown("**Tags:** " + ", ".join(f"{md_escape(t)} ({p:.2f})" for t, p in photo.tags))
    facts = {"id": photo.id, "class": photo.class_name or "—", "source": photo.source, "size": f"{photo.width}×{photo.height}",
             "format": photo.format, "taken": photo.taken_at or "—", "EXIF orientation": photo.orientation, "added": photo.added_at}
    st.table({"field": list(facts), "value": [str(v) for v in facts.values()]})
    st.text("Files:\n" + "\n".join(paths))


def photo_grid(items: Sequence[tuple], *, columns: int = 4, key: str, on_more_like: Optional[Callable[[str], None]] = None,
               services=None) -> None:
    """items: (photo, score or None). Thumbnails with score, a details dialog and 'more like this'."""
    cols = st.columns(columns)
    for i, (photo, score) in enumerate(items):
        with cols[i % columns]:
            thumb = photo.thumb_path if photo.thumb_path and Path(photo.thumb_path).exists() else None
            if thumb:
                st.image(thumb, width="stretch")
            label = Path(photo.path).name
            st.caption((f"**{score:.3f}** · " if score is not None else "") + md_escape(label))
            st.caption(md_escape(photo.caption or ""))
            b1, b2 = st.columns(2)
            if b1.button("Details", key=f"{key}-details-{photo.id}"):
                photo_dialog(photo, services.catalog.paths_of(photo.id) if services else [photo.path])
            if on_more_like and b2.button("Similar", help="More like this", key=f"{key}-like-{photo.id}"):
                on_more_like(photo.id)
