"""Search: text-to-image and image-to-image over the active backend's index."""
from pathlib import Path

import streamlit as st

from core.facts.view import PEOPLE_COUNTS, facts_where
from core.images import ImageError, decode_image
from core.search import relevance_threshold, search_image, search_text, split_matches
from ui.resources import services_or_stop
from ui.widgets import backend_badge, empty_library_notice, md_escape, photo_grid
from ui.router import ensure_router

ensure_router()


services = services_or_stop()
st.title("Search")
backend_badge(services)
if services.backend.text_space == "caption":
    st.caption("Text queries are matched against the photos' facts and captions (bundled backend); image queries use CNN features.")

empty_library_notice(services, "search them here")  # said before a query is typed, with the fix

k = st.sidebar.slider("Results", 1, 48, 12, key="search-k")
threshold = st.sidebar.slider("Minimum score (-1 = off)", -1.0, 1.0, -1.0, 0.01, key="search-threshold",
                              help="Cosine similarity: results below it are hidden.")

# Facts filters (a `where` on the index metadata); photos whose facts are not extracted yet never pass one.
summary = services.catalog.facts_summary()  # indexed columns (schema 4): cheap on every rerun
st.sidebar.markdown("**Only photos…**")
only_people = st.sidebar.checkbox(f"with people ({summary['with_people']})", key="search-has-people")
only_text = st.sidebar.checkbox(f"with text ({summary['with_text']})", key="search-has-text")
scenes = ["(any)", *summary["scenes"]]
scene = st.sidebar.selectbox("Scene", scenes, key="search-scene",
                             format_func=lambda s: s if s == "(any)" else f"{s} ({summary['scenes'][s]})")
setting = st.sidebar.selectbox("Taken", ["(anywhere)", "outdoor", "indoor"], key="search-setting",
                               help="Indoors or outdoors, as far as the photo facts can tell (close-ups stay unknown).")
only_mono = st.sidebar.checkbox("black and white", key="search-monochrome")
people_count = st.sidebar.selectbox("People", ["(any)", *PEOPLE_COUNTS], key="search-people-count",
                                    help="How many people the photo facts counted (faces and person boxes).")
# Only the objects some photo has, with how many photos (as the scenes above); a kept choice stays listed.
found = services.catalog.detected_counts()  # rows kept on write (schema 8): 0.1 s at 1M photos, so never stale
object_choices = [*found, *(o for o in st.session_state.get("search-objects", []) if o not in found)]
with_objects = st.sidebar.multiselect(
    "With objects", object_choices, key="search-objects", format_func=lambda o: f"{o} ({found.get(o, 0):,})",
    disabled=not object_choices,
    placeholder="Choose objects" if object_choices else "No objects detected yet",
    help=("Objects the detector found; a photo must have all of them." if object_choices else
          "No photo has detected objects yet: `python -m core detectors build` (setup runs it), then `python -m core reindex`."))
where = facts_where(has_people=True if only_people else None, has_text=True if only_text else None,
                    scene=None if scene == "(any)" else scene, setting=None if setting == "(anywhere)" else setting,
                    monochrome=True if only_mono else None, objects=with_objects,
                    people=None if people_count == "(any)" else people_count)
if summary["photos"] and summary["with_facts"] < summary["photos"]:
    st.sidebar.caption(f"{summary['photos'] - summary['with_facts']} photos have no facts yet (Library page: update).")


def more_like(photo_id: str) -> None:
    st.session_state["search-like"] = photo_id
    st.rerun()


def forget_like() -> None:
    st.session_state.pop("search-like", None)  # a new text query replaces "more like this"


like = st.session_state.get("search-like")
mode = st.radio("Search by", ["Text", "Image"], horizontal=True, key="search-mode")
results, query_label = None, ""
try:
    # The query widgets are drawn even while "more like this" is shown, so Streamlit keeps the
    # text: Clear brings back the text results instead of an empty box.
    text, upload = "", None
    if mode == "Text":
        text = st.text_input("Describe the photo", key="search-text", placeholder="a cup of coffee", on_change=forget_like)
    else:
        upload = st.file_uploader("Photo to search with", key="search-upload", type=["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"],
                                  on_change=forget_like)
    if like:
        photo = services.catalog.get(like)
        # The file name, not the server path: the path says nothing to the user and leaks the layout of the disk.
        name = Path(photo.path).name if photo else like[:12]
        c1, c2 = st.columns([5, 1], vertical_alignment="center")
        c1.info(f"Photos like **{md_escape(name)}**")
        if c2.button("Clear", key="search-like-clear", help="Back to your query"):
            del st.session_state["search-like"]
            st.rerun()
        results = search_image(services, photo_id=like, k=k, threshold=threshold, where=where)
    elif mode == "Text":
        if text.strip():
            results = search_text(services, text, k=k, threshold=threshold, where=where)
    elif upload is not None:
        try:
            query = decode_image(upload.getvalue(), max_pixels=services.settings.max_image_pixels,
                             max_side=services.settings.decode_max_side).image  # a phone photo: no 12 MP decode
        except ImageError as exc:
            st.error(f"{md_escape(upload.name)}: {md_escape(exc.reason)}")
            st.stop()
        st.image(query, width=200)
        results = search_image(services, image=query, k=k, threshold=threshold, where=where)
except (ValueError, KeyError) as exc:
    st.error(md_escape(exc))

if results is not None:
    if not results:
        # Name what is on, so the user knows which control to change (an empty library is said at the top).
        limits = ([f"the minimum score {threshold:.2f} (lower it in the sidebar)"] if threshold > -1 else []) + \
                 (["the “Only photos…” filters (loosen them in the sidebar)"] if where else [])
        if limits:
            st.warning(f"No photo passes {' and '.join(limits)}.")
        elif like:
            st.warning("No other photo to compare it with.")
        elif services.catalog.count():
            st.warning("No photo is in the index of the active backend yet: re-index them on the Library page.")
    else:
        query = st.session_state.get("search-text", "").strip() if mode == "Text" and not like else None
        strong, weak, cut = results, [], None
        if query:
            # The same calibrated cut-off as Chat's counts and lists: what is above it is what Chat
            # would call a match, so the two pages agree; the rest is shown apart, as weaker.
            strong, weak, cut = split_matches(services.backend, results)
            if not strong:
                st.info(f"No photo looks like “{md_escape(query)}” (no score reaches the cut-off {cut:.3f}); the closest ones are below.")
        if strong:
            photo_grid([(r.photo, r.score) for r in strong], key="search-grid", on_more_like=more_like, services=services,
                       query_text=query or None, cut=cut)
        if weak:
            st.subheader("Weaker matches", divider="gray")
            st.caption(f"Scores below {cut:.3f}, the cut-off for this query (at least {relevance_threshold(services.backend):.2f}, "
                       "and close to the best photo's score): these photos may not show what you asked for, and Chat does not count them.")
            photo_grid([(r.photo, r.score) for r in weak], key="search-grid", on_more_like=more_like, services=services,
                       query_text=query, cut=cut)
