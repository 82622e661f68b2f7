"""Library: what is in the collection, and ways to add photos (folder, upload, demo)."""
import streamlit as st

from core.pathnames import display_path
from ui.resources import services_or_stop
from ui.widgets import (add_photos_panel, backend_badge, keep_report, md_escape, near_duplicates_panel, photo_grid, progress_callback,
                        show_last_report)
from ui.router import ensure_router

ensure_router()
GRID_PAGE = 48  # thumbnails per page of the grid
MAX_PAGE_CHOICES = 200  # above this many pages the grid asks for a page number instead of listing every page

services = services_or_stop()
st.title("Library")
backend_badge(services)

catalog = services.catalog
classes = catalog.classes()
c1, c2, c3 = st.columns(3)
n_photos = catalog.count()  # once: at a million photos on PostgreSQL each count is 0.2 s
c1.metric("Photos", n_photos)
c2.metric("Files", catalog.count_files())
c3.metric("Classes", len(classes))

show_last_report("lib-report")
show_last_report("lib-add-report")
show_last_report("lib-near-report")
near_duplicates_panel(services, key="lib-near")
with st.expander("Add photos", expanded=n_photos == 0):
    if st.button("Build the demo library (photos bundled with scikit-image / scikit-learn)", key="lib-demo"):
        from core.demo import build_demo

        keep_report("lib-report", build_demo(services, on_progress=progress_callback("Demo library")))
    add_photos_panel(services, key="lib-add")
    st.caption("Crawl the web for photos on the Collect page.")

n_photos = n_photos or catalog.count()  # photos added just above by an empty library's first import
if services.backend.model_id and n_photos:
    missing = catalog.count_not_indexed(services.backend.model_id)
    if missing:
        st.info(f"{missing} photos are not yet in the index of the active backend ({services.backend.model_id}).")
        if st.button("Re-index them now", key="lib-reindex"):
            from core.ingest import reindex

            keep_report("lib-report", reindex(services, on_progress=progress_callback("Re-index")))

if n_photos:
    from core.facts.refresh import expected_version, stale_count
    from models.human_models import problems, status_line

    if services.settings.detectors and problems(services.settings.detectors_dir):
        st.warning(status_line(services.settings.detectors_dir))
    stale = stale_count(catalog, expected_version(services.settings))
    if stale:
        st.info(f"{stale} photos have older facts (people, text, scene, objects) or none yet.")
        if st.button("Update their facts", key="lib-facts"):
            from core.facts.refresh import refresh_facts

            st.session_state["lib-facts-report"] = refresh_facts(services, on_progress=progress_callback("Photo facts")).summary()
            st.rerun()
if "lib-facts-report" in st.session_state:
    st.success(md_escape(st.session_state["lib-facts-report"]))

if classes:
    names = ["(all)"] + sorted(classes)
    chosen = st.selectbox("Class", names, key="lib-class", format_func=lambda c: f"{c or '(none)'} ({classes.get(c, sum(classes.values()))})",
                          on_change=lambda: [st.session_state.pop(k, None) for k in ("lib-page", "lib-page-number")])  # another class starts at its first page
    in_view = sum(classes.values()) if chosen == "(all)" else classes.get(chosen, 0)
    start = 0
    if GRID_PAGE < in_view <= GRID_PAGE * MAX_PAGE_CHOICES:  # a page at a time: every photo stays reachable, and the page says how many
        pages = range(0, in_view, GRID_PAGE)
        start = st.selectbox("Photos shown", pages, key="lib-page",
                             format_func=lambda s: f"{s + 1}–{min(s + GRID_PAGE, in_view)} of {in_view}")
    elif in_view > GRID_PAGE:  # a million photos are 20,834 pages: too many choices for a list, so a page number
        n_pages = -(-in_view // GRID_PAGE)
        number = st.number_input(f"Page (of {n_pages:,})", min_value=1, max_value=n_pages, step=1, key="lib-page-number")
        start = (int(number) - 1) * GRID_PAGE
        st.caption(f"Photos {start + 1:,}–{min(start + GRID_PAGE, in_view):,} of {in_view:,}")
    photos = catalog.list_photos(class_name=None if chosen == "(all)" else chosen, limit=GRID_PAGE, offset=start)
    photo_grid([(p, None) for p in photos], key="lib-grid", services=services)
    skipped = catalog.skipped(limit=200)
    if skipped:
        with st.expander(f"Files skipped by ingest ({len(skipped)})"):
            st.dataframe({"file": [display_path(p) for p, _ in skipped], "reason": [r for _, r in skipped]}, width="stretch")
else:
    st.info("The library is empty. Build the demo library or ingest a folder above.")
