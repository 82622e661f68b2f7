"""Library: what is in the collection, and ways to add photos (folder, upload, demo)."""
import streamlit as st

from core.uploads import save_uploads
from ui.resources import services_or_stop
from ui.widgets import backend_badge, md_escape, photo_grid, progress_callback

services = services_or_stop()
st.title("Library")
backend_badge(services)

catalog = services.catalog
classes = catalog.classes()
c1, c2, c3 = st.columns(3)
c1.metric("Photos", catalog.count())
c2.metric("Files", catalog.count_files())
c3.metric("Classes", len(classes))


def show_report(report) -> None:
    """Keep the report for the next run, then rerun so every count on the page is fresh."""
    st.session_state["lib-report"] = (report.summary(), [(s.path, s.reason) for s in report.skipped])
    st.rerun()


last = st.session_state.get("lib-report")
if last:
    summary, skipped_rows = last
    (st.warning if skipped_rows else st.success)(md_escape(summary))
    if skipped_rows:
        st.dataframe({"file": [p for p, _ in skipped_rows], "reason": [r for _, r in skipped_rows]}, width="stretch")

with st.expander("Add photos", expanded=catalog.count() == 0):
    st.caption("Ingest is incremental and resumable: press Stop (top right) to cancel, run it again to resume.")
    if st.button("Build the demo library (photos bundled with scikit-image / scikit-learn)", key="lib-demo"):
        from core.demo import build_demo

        show_report(build_demo(services, on_progress=progress_callback("Demo library")))
    folder = st.text_input("Folder on this machine", key="lib-folder", placeholder="/home/me/Pictures")
    if st.button("Ingest folder", key="lib-ingest", disabled=not folder):
        from pathlib import Path

        from core.ingest import ingest_folder

        try:
            show_report(ingest_folder(services, Path(folder), on_progress=progress_callback("Ingest")))
        except FileNotFoundError as exc:
            st.error(f"{md_escape(exc)}: check the path (it must exist on the machine running PhotoLore).")
    uploads = st.file_uploader("Or upload photos", accept_multiple_files=True, key="lib-upload",
                               type=["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"])
    if uploads and st.button(f"Add {len(uploads)} uploaded file(s)", key="lib-upload-go"):
        from core.ingest import ingest_paths

        paths = save_uploads(services.settings.library_dir / "uploads", [(u.name, u.getvalue()) for u in uploads])
        show_report(ingest_paths(services, paths, source="upload", class_override="uploads", on_progress=progress_callback("Upload")))

if services.backend.model_id and catalog.count():
    missing = len(catalog.photos_not_indexed(services.backend.model_id))
    if missing:
        st.info(f"{missing} photos are not yet in the index of the active backend ({services.backend.model_id}).")
        if st.button("Re-index them now", key="lib-reindex"):
            from core.ingest import reindex

            show_report(reindex(services, on_progress=progress_callback("Re-index")))

if classes:
    names = ["(all)"] + sorted(classes)
    chosen = st.selectbox("Class", names, key="lib-class", format_func=lambda c: f"{c or '(none)'} ({classes.get(c, sum(classes.values()))})")
    photos = catalog.list_photos(class_name=None if chosen == "(all)" else chosen, limit=48)
    photo_grid([(p, None) for p in photos], key="lib-grid", services=services)
    skipped = catalog.skipped(limit=200)
    if skipped:
        with st.expander(f"Files skipped by ingest ({len(skipped)})"):
            st.dataframe({"file": [p for p, _ in skipped], "reason": [r for _, r in skipped]}, width="stretch")
else:
    st.info("The library is empty. Build the demo library or ingest a folder above.")
