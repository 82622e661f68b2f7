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
    # The photo at its own size (at most half the dialog) beside what is known about it, so a
    # small photo is not blown up and the caption and facts stay above the fold.
    left, right = st.columns([1, 1], gap="medium")
    with left:
        if Path(photo.path).exists():
            st.image(photo.path, width=min(int(photo.width or 560), 560))
        elif photo.thumb_path and Path(photo.thumb_path).exists():
            st.image(photo.thumb_path)
    with right:
        st.markdown("**Caption:** " + md_escape(photo.caption or "—") + f"  \n*({md_escape(photo.caption_source or 'unknown')})*")
        if photo.tags:
            st.markdown("**Tags:** " + ", ".join(f"{md_escape(t)} ({p:.2f})" for t, p in photo.tags))
        st.markdown("**Id** (content hash)")
        st.code(photo.id, language=None, wrap_lines=True)  # the whole id, wrapped and copyable
        facts = {"class": photo.class_name or "—", "source": photo.source, "size": f"{photo.width}×{photo.height}",
                 "format": photo.format, "taken": photo.taken_at or "—", "EXIF orientation": photo.orientation, "added": photo.added_at}
        st.dataframe({"field": list(facts), "value": [str(v) for v in facts.values()]}, hide_index=True, width="stretch")
    st.text("Files:\n" + "\n".join(paths))


@st.dialog("Why this match", width="large")
def why_dialog(services, photo, text: str, score: Optional[float] = None) -> None:
    """A heat map over the photo of what made it match `text` (Grad-CAM / attention, see core.explain),
    with the match strength: below the calibrated cut-off it is greyed and labelled a weak match."""
    from core.explain import explain, faded
    from core.images import ImageError, load_rgb
    from core.search import relevance_threshold

    try:
        image = load_rgb(Path(photo.path), max_pixels=services.settings.max_image_pixels)
    except ImageError as exc:
        st.error(f"{md_escape(Path(photo.path).name)}: {md_escape(exc.reason)}")
        return
    with st.spinner("Computing the heat map…"):
        try:
            result = explain(services.backend, image, text)
        except ValueError as exc:
            st.error(md_escape(exc))
            return
    cut = relevance_threshold(services.backend)
    weak = score is not None and score < cut
    if score is None:
        st.caption("Match strength unknown: the map shows where the model would look for the text, not that the photo shows it.")
    elif weak:
        st.warning(f"**Weak match**: score {score:.3f} is below the calibrated cut-off {cut:.2f} for this backend. "
                   f"The map shows where the model would look for “{md_escape(text)}”, not that the photo shows it.")
    else:
        st.success(f"**Match**: score {score:.3f}, at or above the calibrated cut-off {cut:.2f} for this backend.")
    st.image(faded(result.overlay) if weak else result.overlay, width="stretch",
             caption="weak match: greyed" if weak else None)
    st.caption(f"Method: {md_escape(result.method)}")
    # The weights are relative (they sum to 1 over the explained targets), not a confidence.
    st.text("Explained by (relative weight): " + ", ".join(f"{t} ({w:.2f})" for t, w in result.targets))


def photo_grid(items: Sequence[tuple], *, columns: int = 4, key: str, on_more_like: Optional[Callable[[str], None]] = None,
               services=None, query_text: Optional[str] = None) -> None:
    """items: (photo, score or None). Thumbnails with score, details, 'similar', and 'why' for a text query."""
    cols = st.columns(columns)
    for i, (photo, score) in enumerate(items):
        with cols[i % columns]:
            thumb = photo.thumb_path if photo.thumb_path and Path(photo.thumb_path).exists() else None
            if thumb:
                st.image(thumb, width="stretch")
            label = Path(photo.path).name
            st.caption((f"**{score:.3f}** · " if score is not None else "") + md_escape(label))
            st.caption(md_escape(photo.caption or ""))
            b1, b2, b3 = st.columns(3, gap="small")
            if b1.button(":material/info:", help="Details", key=f"{key}-details-{photo.id}"):
                photo_dialog(photo, services.catalog.paths_of(photo.id) if services else [photo.path])
            if on_more_like and b2.button(":material/image_search:", help="More like this", key=f"{key}-like-{photo.id}"):
                on_more_like(photo.id)
            if query_text and services is not None and b3.button(":material/local_fire_department:", help="Why this match: a heat map over the photo",
                                                                 key=f"{key}-why-{photo.id}"):
                why_dialog(services, photo, query_text, score)


def show_last_report(key: str) -> None:
    """Render the ingest report kept by `keep_report` on the previous run."""
    last = st.session_state.get(key)
    if last:
        summary, skipped_rows = last
        (st.warning if skipped_rows else st.success)(md_escape(summary))
        if skipped_rows:
            st.dataframe({"file": [p for p, _ in skipped_rows], "reason": [r for _, r in skipped_rows]}, width="stretch")


def keep_report(key: str, report, extra_skips: Sequence[tuple[str, str]] = ()) -> None:
    """Keep an ingest report for the next run, then rerun so every count on the page is fresh."""
    st.session_state[key] = (report.summary(), list(extra_skips) + [(s.path, s.reason) for s in report.skipped])
    st.rerun()


def add_photos_panel(services, key: str) -> None:
    """Upload files or import a folder on this machine; both end in core.ingest with a report kept under f"{key}-report"."""
    from core.ingest import ingest_folder, ingest_paths
    from core.uploads import save_uploads

    report_key = f"{key}-report"  # the caller shows it with show_last_report(report_key) where it fits
    st.caption("Ingest is incremental and resumable: press Stop (top right) to cancel, run it again to resume.")
    folder = st.text_input("Import a folder on this machine (sub-folders become classes)", key=f"{key}-folder",
                           placeholder="/home/me/Pictures")
    if st.button("Import folder", key=f"{key}-import", disabled=not folder.strip()):
        try:
            report = ingest_folder(services, Path(folder.strip()).expanduser(), on_progress=progress_callback("Import"))
        except (FileNotFoundError, NotADirectoryError) as exc:
            st.error(f"{md_escape(exc)}: give the full path of a folder that exists on the machine running PhotoLore.")
        else:
            keep_report(report_key, report)
    uploads = st.file_uploader("Or upload photos", accept_multiple_files=True, key=f"{key}-files",
                               type=["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"])
    upload_class = st.text_input("Class (folder) for uploaded photos", value="uploads", key=f"{key}-class")
    if uploads and st.button(f"Add {len(uploads)} uploaded file(s)", key=f"{key}-upload"):
        from core.crawl.files import safe_component

        target = services.settings.library_dir / safe_component(upload_class, "uploads")
        saved, rejected = save_uploads([(u.name, u.getvalue()) for u in uploads], target,
                                       max_pixels=services.settings.max_image_pixels)
        report = ingest_paths(services, saved, source="upload", on_progress=progress_callback("Upload"))
        keep_report(report_key, report, extra_skips=rejected)
