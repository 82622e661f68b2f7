"""Small rendering helpers. Text from photos, captions and the web is data: escaped, never HTML."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Optional, Sequence

import streamlit as st

from core.pathnames import display_path

_BROWSER_IMAGES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"})
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def md_escape(text: object) -> str:
    """Escape Markdown so untrusted text shows literally (no links, images or formatting). File names
    that are not valid UTF-8 show their bad bytes as \\xHH (a web page cannot carry them)."""
    return _MD_SPECIAL.sub(r"\\\1", display_path(str(text or "")))


def backend_badge(services) -> None:
    st.caption(f"Backend: **{md_escape(services.choice.name)}** (`{services.backend.model_id}`) — {md_escape(services.choice.reason)}")


def empty_library_notice(services, then: str) -> bool:
    """Say, before anything is tried, that the library is empty and how to fill it; True when it is."""
    if services.catalog.count():
        return False
    st.info(f"The library is empty: add photos on the Library page (a folder, uploads or the demo photos), then {then}.")
    return True


def progress_callback(label: str) -> Callable[..., None]:
    """An on_progress(done, total) that drives an st.progress bar."""
    bar = st.progress(0.0, text=label)

    def update(done: int, total: int, **info) -> None:
        extra = "".join(f" · {k} {v}" for k, v in info.items() if k in ("added", "skipped"))
        bar.progress(min(1.0, done / total) if total else 1.0, text=f"{label}: {done}/{total}{extra}")

    return update


@st.dialog("Photo details", width="large")
def photo_dialog(photo, paths: Sequence[str], provenance: Optional[dict] = None) -> None:
    # The photo at its own size (at most half the dialog) beside what is known about it, so a
    # small photo is not blown up and the caption and facts stay above the fold.
    left, right = st.columns([1, 1], gap="medium")
    with left:
        width = min(int(photo.width or 560), 560)
        boxed = _with_boxes(photo)
        if boxed is not None:
            st.image(boxed, width=width, caption="Boxes: what the object detector found (label and confidence)")
        elif Path(photo.path).exists():
            if Path(photo.path).suffix.lower() in _BROWSER_IMAGES and display_path(photo.path) == photo.path:
                st.image(photo.path, width=width)
            else:  # HEIC/AVIF/TIFF or an odd file name: send the decoded pixels, not the file
                from core.images import ImageError, load_rgb

                try:
                    st.image(load_rgb(Path(photo.path)), width=width)
                except ImageError as exc:
                    st.caption(md_escape(exc.reason))
        elif photo.thumb_path and Path(photo.thumb_path).exists():
            st.image(photo.thumb_path)
    with right:
        from core.annotations.captions import caption_origin

        st.markdown("**Caption:** " + md_escape(photo.caption or "—") + f"  \n*({md_escape(caption_origin(photo.caption_source))})*")
        if photo.tags:
            st.markdown("**Tags** (the model's top ImageNet classes for the whole photo, with their probability)**:** "
                        + ", ".join(f"{md_escape(t)} ({p:.2f})" for t, p in photo.tags))
        st.markdown("**Id** (content hash)")
        st.code(photo.id, language=None, wrap_lines=True)  # the whole id, wrapped and copyable
        facts = {"class": photo.class_name or "—", "source": photo.source, "size": f"{photo.width}×{photo.height}",
                 "format": photo.format, "taken": photo.taken_at or "—", "EXIF orientation": photo.orientation, "added": photo.added_at}
        if provenance:  # where a crawled photo came from; table cells are plain text, never Markdown or HTML
            facts |= {"source page": provenance.get("page_url") or "—", "image URL": provenance.get("image_url") or "—",
                      "alt text": provenance.get("alt") or "—", "page title": provenance.get("title") or "—"}
        st.table({"field": list(facts), "value": [str(v) for v in facts.values()]})
        from core.facts.view import facts_lines

        st.markdown("**Photo facts**")
        # Said here because every number below is a model's confidence, and Objects differ from Tags on purpose.
        st.caption("What the offline models detected, each with its confidence (0–1): guesses, not certainties. "
                   "An object word adds up all its ImageNet classes over the whole photo and its four quarters, "
                   "so it can score higher than any single tag.")
        st.text("\n".join(facts_lines(getattr(photo, "facts", None))))  # plain text: OCR'd words are data, never markup
    st.text("Files:\n" + "\n".join(display_path(p) for p in paths))


def _with_boxes(photo):
    """The photo with its detected objects' boxes drawn, or None (no sure detections, or unreadable)."""
    from core.facts.view import draw_detections
    from core.images import ImageError, load_rgb

    facts = getattr(photo, "facts", None)
    if facts is None or not facts.detections or not Path(photo.path).exists():
        return None
    try:
        return draw_detections(load_rgb(Path(photo.path)), facts)
    except (ImageError, OSError):
        return None


@st.dialog("Why this match", width="large")
def why_dialog(services, photo, text: str, score: Optional[float] = None, cut: Optional[float] = None) -> None:
    """A heat map over the photo of what made it match `text` (Grad-CAM / attention, see core.explain),
    with the match strength: below the cut-off Search used for this query (`cut`; the backend's floor
    when not given) it is greyed and labelled a weak match."""
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
    cut = relevance_threshold(services.backend) if cut is None else cut
    weak = score is not None and score < cut
    if score is None:
        st.caption("Match strength unknown: the map shows where the model would look for the text, not that the photo shows it.")
    elif weak:
        st.warning(f"**Weak match**: score {score:.3f} is below the calibrated cut-off {cut:.3f} for this query. "
                   f"The map shows where the model would look for “{md_escape(text)}”, not that the photo shows it.")
    else:
        st.success(f"**Match**: score {score:.3f}, at or above the calibrated cut-off {cut:.3f} for this query.")
    st.image(faded(result.overlay) if weak else result.overlay, width="stretch",
             caption="weak match: greyed" if weak else None)
    st.caption(f"Method: {md_escape(result.method)}")
    # The weights are relative (they sum to 1 over the explained targets), not a confidence.
    st.text("Explained by (relative weight): " + ", ".join(f"{t} ({w:.2f})" for t, w in result.targets))


def photo_grid(items: Sequence[tuple], *, columns: int = 4, key: str, on_more_like: Optional[Callable[[str], None]] = None,
               services=None, query_text: Optional[str] = None, numbered: bool = False, cut: Optional[float] = None) -> None:
    """items: (photo, score or None). Thumbnails with score, details, 'similar', and 'why' for a text query.
    `numbered`: label them [1], [2]... as an answer that cites them does."""
    cols = st.columns(columns)
    for i, (photo, score) in enumerate(items):
        with cols[i % columns]:
            thumb = photo.thumb_path if photo.thumb_path and Path(photo.thumb_path).exists() else None
            if thumb:
                st.image(thumb, width="stretch")
            label = (f"[{i + 1}] " if numbered else "") + display_path(Path(photo.path).name)
            st.caption((f"**{score:.3f}** · " if score is not None else "") + md_escape(label))
            st.caption(md_escape(photo.caption or ""))
            b1, b2, b3 = st.columns(3, gap="small")
            if b1.button(":material/info:", help="Details", key=f"{key}-details-{photo.id}"):
                provenance = None
                if services is not None and photo.source == "crawl":
                    from core.crawl import provenance_for

                    provenance = provenance_for(Path(photo.path), services.settings.data_dir / "crawl.sqlite")
                photo_dialog(photo, services.catalog.paths_of(photo.id) if services else [photo.path], provenance)
            if on_more_like and b2.button(":material/image_search:", help="More like this", key=f"{key}-like-{photo.id}"):
                on_more_like(photo.id)
            if query_text and services is not None and b3.button(":material/local_fire_department:", help="Why this match: a heat map over the photo",
                                                                 key=f"{key}-why-{photo.id}"):
                why_dialog(services, photo, query_text, score, cut)


_NOT_ADDED = ("skipped", "near duplicate", "not read")


def show_last_report(key: str) -> None:
    """Render the ingest report kept by `keep_report` on the previous run: counts per outcome, every file."""
    last = st.session_state.get(key)
    if last:
        summary, rows, counts = last
        problems = any(status in _NOT_ADDED for status, _, _ in rows)
        (st.warning if problems else st.success)(md_escape(summary))
        if rows:
            with st.expander(f"Every file seen ({len(rows)})", expanded=problems):
                st.table({"outcome": list(counts), "files": list(counts.values())})
                st.dataframe({"outcome": [r[0] for r in rows], "file": [r[1] for r in rows], "detail": [r[2] for r in rows]},
                             hide_index=True, width="stretch", key=f"{key}-files")


def keep_report(key: str, report, extra_skips: Sequence[tuple[str, str]] = ()) -> None:
    """Keep an ingest report for the next run, then rerun so every count on the page is fresh."""
    rows = [("skipped", display_path(p), r) for p, r in extra_skips]
    rows += [(f.status, display_path(f.path), f.detail) for f in report.files]
    counts: dict[str, int] = {}
    for _, reason in extra_skips:  # uploads refused before import
        counts[f"skipped: {reason.split(':')[0]}"] = counts.get(f"skipped: {reason.split(':')[0]}", 0) + 1
    for name, n in report.reason_counts().items():
        counts[name] = counts.get(name, 0) + n
    st.session_state[key] = (report.summary(), rows, counts)
    st.rerun()


def near_duplicates_panel(services, key: str) -> None:
    """Files import left out because they look like a library photo: keep both, or keep the new file instead."""
    from core.images import ImageError, load_rgb, make_thumbnail
    from core.library import keep_near_duplicate

    near = services.catalog.near_duplicates(limit=50)
    if not near:
        return
    photos = services.catalog.get_many([n.photo_id for n in near])
    with st.expander(f"Near duplicates left out of the library ({len(near)})", expanded=True):
        st.caption("Each file looks like a photo already in the library (perceptual-hash distance; 0 = identical to the eye). "
                   "The library photo is kept; choose to keep both, or the new file instead.")
        for i, n in enumerate(near):
            photo = photos.get(n.photo_id)
            c1, c2, c3 = st.columns([1, 1, 2])
            if photo is not None and photo.thumb_path and Path(photo.thumb_path).exists():
                c1.image(photo.thumb_path, caption="in the library", width="stretch")
            try:
                c2.image(make_thumbnail(load_rgb(Path(n.path)), 320), caption="left out", width="stretch")
            except ImageError as exc:
                c2.caption(md_escape(exc.reason))
            c3.text(f"{display_path(n.path)}\nlooks like {display_path(photo.path) if photo else '?'}\ndistance {n.distance}")
            if c3.button("Keep both", key=f"{key}-both-{i}"):
                keep_report(f"{key}-report", keep_near_duplicate(services, n.path))
            if c3.button("Keep the new file instead", key=f"{key}-replace-{i}"):
                keep_report(f"{key}-report", keep_near_duplicate(services, n.path, replace=True))


def ray_choice(services, key: str, help: str) -> Optional[str]:
    """The configured Ray cluster (PHOTOLORE_RAY_ADDRESS) while "Run on the Ray cluster" stays ticked, else None: this machine."""
    address = services.settings.ray_address
    if address and st.checkbox(f"Run on the Ray cluster at {md_escape(address)}", value=True, key=key, help=help):
        return address
    return None


def untick_ray(what: str) -> str:
    """The fix a ClusterError on a page names: the same job on this machine."""
    return f'Untick "Run on the Ray cluster" to {what} on this machine.'


def add_photos_panel(services, key: str) -> None:
    """Upload files or import a folder on this machine; both end in core.ingest with a report kept under f"{key}-report"."""
    from core.images import IMAGE_EXTENSIONS
    from core.ingest import ingest_folder, ingest_paths
    from core.uploads import save_uploads

    report_key = f"{key}-report"  # the caller shows it with show_last_report(report_key) where it fits
    st.caption("Ingest is incremental and resumable: press Stop (top right) to cancel, run it again to resume.")
    folder = st.text_input("Import a folder on this machine (sub-folders become classes)", key=f"{key}-folder",
                           placeholder="/home/me/Pictures")
    ray_address = ray_choice(services, f"{key}-ray", "The folder must be readable at the same path by every Ray worker.")
    if st.button("Import folder", key=f"{key}-import", disabled=not folder.strip()):
        from core.cluster import ClusterError, executor_for

        try:
            executor = executor_for(services.settings, ray_address)
            report = ingest_folder(services, Path(folder.strip()).expanduser(), on_progress=progress_callback("Import"),
                                   executor=executor)
        except (FileNotFoundError, NotADirectoryError) as exc:
            st.error(f"{md_escape(exc)}: give the full path of a folder that exists on the machine running PhotoLore.")
        except ClusterError as exc:
            st.error(f"{md_escape(exc)}. {untick_ray('import')}")
        else:
            keep_report(report_key, report)
    uploads = st.file_uploader("Or upload photos", accept_multiple_files=True, key=f"{key}-files",
                               type=sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
    upload_class = st.text_input("Class (folder) for uploaded photos", value="uploads", key=f"{key}-class")
    if uploads and st.button(f"Add {len(uploads)} uploaded file(s)", key=f"{key}-upload"):
        from core.crawl.files import safe_component

        target = services.settings.library_dir / safe_component(upload_class, "uploads")
        saved, rejected = save_uploads([(u.name, u.getvalue()) for u in uploads], target,
                                       max_pixels=services.settings.max_image_pixels)
        report = ingest_paths(services, saved, source="upload", on_progress=progress_callback("Upload"))
        keep_report(report_key, report, extra_skips=rejected)
