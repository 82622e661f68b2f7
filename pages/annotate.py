"""Annotate: run annotators, review and correct their results, import and export."""
import base64
from pathlib import Path

import streamlit as st

from core import annotations as ann
from core.annotate.runner import make_annotator, reset_results, run_annotations
from ui.resources import services_or_stop
from ui.widgets import backend_badge, empty_library_notice, md_escape, progress_callback, ray_choice, untick_ray
from ui.router import ensure_router

ensure_router()

services = services_or_stop()
st.title("Annotate")
backend_badge(services)
st.caption("Six affective scores (1-5), a concept phrase, sentiment and topics per photo. Human corrections win over "
           "model predictions and are copied, with them, into the index metadata that search and chat filter on.")


@st.cache_data(show_spinner=False, max_entries=5000)
def thumb_url(path: str, mtime: float) -> str:
    """A small inline JPEG for the review grid (the browser cannot read local files)."""
    import io

    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        im.thumbnail((96, 96))
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def thumb_of(path):
    try:
        return thumb_url(path, Path(path).stat().st_mtime) if path else None
    except OSError:
        return None


# --- run -----------------------------------------------------------------------------------
st.subheader("Run annotators")
# Run would annotate 0 of 0 photos and leave "press Run" standing: say what to do first
empty = empty_library_notice(services, "annotate them here")
c1, c2 = st.columns(2)
chosen = c1.multiselect("Annotators", ["zeroshot", "vlm-api"], default=["zeroshot"], key="ann-annotators",
                        help="zeroshot: local prompts against the active backend. vlm-api: an OpenAI-compatible endpoint "
                             "(PHOTOLORE_VLM_BASE_URL / _MODEL / _API_KEY or [vlm] in .streamlit/secrets.toml).")
scope = c2.radio("Photos", ["All", "A class", "A search result"], horizontal=True, key="ann-scope")
photo_ids = None
if scope == "A class":
    classes = services.catalog.classes()
    cls = c2.selectbox("Class", list(classes) or ["—"], key="ann-class",
                       format_func=lambda c: f"{c or '(none)'} ({classes.get(c, 0)})")
    photo_ids = services.catalog.photo_ids(class_name=cls)
elif scope == "A search result":
    from core.search import search_text

    text = c2.text_input("Search text", key="ann-search", placeholder="a cosy living room")
    k = c2.number_input("How many results", 1, 500, 24, key="ann-search-k")
    photo_ids = [r.photo.id for r in search_text(services, text, k=int(k))] if text.strip() else []
force = st.checkbox("Re-annotate photos these annotators already did (bulk re-annotate)", key="ann-force")
ray_address = ray_choice(services, "ann-ray", "zeroshot runs on the cluster's workers (the photos must be readable at the same "
                                              "path by every worker); vlm-api calls its endpoint from this machine either way.")
st.caption("To cancel a run, press Stop (top right) or the Cancel button: finished batches are kept and a new run resumes.")
b1, b2 = st.columns([1, 5])
run = b1.button("Run", key="ann-run", type="primary", disabled=empty or not chosen or photo_ids == [])
if b2.button("Cancel", key="ann-cancel"):
    st.session_state["ann-last"] = None
    st.info("Cancelled: the results of finished batches are saved; Run again to resume.")

if run:
    from core.annotate.on_ray import ON_RAY, annotate_executor_for
    from core.cluster import ClusterError

    reports = []
    for name in chosen:
        try:
            annotator = make_annotator(name, services)
        except ValueError as exc:
            st.error(f"{name}: {md_escape(exc)}")
            continue
        try:
            executor = annotate_executor_for(services.settings, ray_address if name in ON_RAY else None)
            reports.append(run_annotations(services, annotator, photo_ids, force=force, executor=executor,
                                           on_progress=progress_callback(f"Annotating with {name}")))
        except ClusterError as exc:
            st.error(f"{name}: {md_escape(exc)}. {untick_ray('annotate')}")
    st.session_state["ann-last"] = [r.as_dict() | {"summary": r.summary()} for r in reports]

for rep in st.session_state.get("ann-last") or []:
    (st.warning if rep["failed"] else st.success)(md_escape(rep["summary"]))
    if rep["failed"]:
        st.dataframe([{"file": f["filename"], "reason": f["reason"]} for f in rep["failed"]], key=f"ann-failed-{rep['annotator']}")

# --- review ----------------------------------------------------------------------------------
st.subheader("Review and correct")
only_done = st.toggle("Only annotated photos", value=True, key="ann-only-done")
page_size = 50
if scope == "A search result":  # at most 500 photos, in the search's order
    df = ann.effective_annotations(services.catalog, photo_ids)
    if only_done:
        df = df[df[list(ann.DIMENSIONS)].notna().any(axis=1) | df.sentiment.notna()]
    total = len(df)
else:  # counted and paged in the catalog: a page reads its 50 photos, not the whole library (a million photos: 40 s)
    review_scope = {"class_name": cls if scope == "A class" else None, "annotated_only": only_done}
    total = ann.review_count(services.catalog, **review_scope)
pages = max(1, (total + page_size - 1) // page_size)
page = st.number_input(f"Page (of {pages})", 1, pages, 1, key="ann-page") if pages > 1 else 1
if scope == "A search result":
    view = df.iloc[(page - 1) * page_size: page * page_size].reset_index(drop=True)
else:
    ids = ann.review_ids(services.catalog, offset=(page - 1) * page_size, limit=page_size, **review_scope)
    view = ann.effective_annotations(services.catalog, ids)
if not view.empty and pages > 1:
    first = (page - 1) * page_size + 1
    st.caption(f"Photos {first:,}–{first + len(view) - 1:,} of {total:,}")
if view.empty:
    st.info("No annotated photo here yet: choose photos and press Run." if only_done and not empty
            else "No photos: add some on the Library page.")
else:
    grid = view[["photo_id", "filename", *ann.DIMENSIONS, "sentiment", "topics", "concept_text", "caption", "annotator"]].copy()
    grid.insert(1, "thumbnail", [thumb_of(p) for p in view.thumb_path])
    grid["topics"] = [", ".join(t) for t in grid.topics]
    # A corrected row says so: the values shown are the person's, over the model's prediction.
    grid["annotator"] = [f"corrected ({', '.join(c)}) · over {a or 'none'}" if c else a for a, c in zip(view.annotator, view.corrected)]
    score_col = {d: st.column_config.NumberColumn(d, min_value=1, max_value=5, step=1, format="%d") for d in ann.DIMENSIONS}
    # A fresh editor key after each save: the saved edits are in the data now, not pending changes.
    editor_key = f"ann-editor-{st.session_state.get('ann-editor-gen', 0)}"
    st.data_editor(
        grid, key=editor_key, hide_index=True, num_rows="fixed", width="stretch",
        disabled=["photo_id", "thumbnail", "filename", "caption", "annotator"],
        column_config={"photo_id": None, "thumbnail": st.column_config.ImageColumn("Photo", width="small"), **score_col,
                       "sentiment": st.column_config.SelectboxColumn("sentiment", options=list(ann.SENTIMENTS)),
                       "topics": st.column_config.TextColumn("topics", help="comma-separated"),
                       "concept_text": st.column_config.TextColumn("concept_text", max_chars=200)},
    )
    edited = st.session_state.get(editor_key, {}).get("edited_rows", {})
    if st.button(f"Save corrections ({len(edited)} rows changed)" if edited else "No unsaved corrections", key="ann-save", disabled=not edited):
        edits = {view.photo_id[int(i)]: values for i, values in edited.items()}
        problems = ann.save_review_edits(services.catalog, services.store, edits)
        for p in problems:
            st.error(md_escape(p))
        if not problems:
            st.session_state["ann-saved"] = f"Saved corrections for {len(edits)} photos."
            st.session_state["ann-editor-gen"] = st.session_state.get("ann-editor-gen", 0) + 1
            st.rerun()
    if saved := st.session_state.pop("ann-saved", None):
        st.success(saved)

# --- manage ----------------------------------------------------------------------------------
st.subheader("Import, export, reset")
m1, m2 = st.columns(2)
with m1:
    kind = st.selectbox("Import", ["scores", "captions", "senticap"], key="ann-import-kind",
                        format_func={"scores": "Scores: filename,Safety,…,Convenience,concept_text (CSV/JSON)",
                                     "captions": "Your captions: filename,caption (CSV/JSON)",
                                     "senticap": "SentiCap JSON (captions + sentiment ground truth)"}.get)
    upload = st.file_uploader("File", type=["csv", "json"], key="ann-import-file")
    valid_only = st.checkbox("Import the valid rows even if some are invalid", key="ann-import-valid-only")
    if upload is not None and st.button("Import", key="ann-import"):
        fn = {"scores": ann.import_scores, "captions": ann.import_captions, "senticap": ann.import_senticap}[kind]
        data = upload.getvalue()
        extra = {} if kind == "scores" else {"services": services}
        try:
            report = fn(services.catalog, data, valid_only=valid_only, store=services.store, **extra)
        except ann.AnnotationImportError as exc:
            st.error(f"Nothing imported from {md_escape(upload.name)}: {len(exc.report.errors)} problems. "
                     "Fix them, or tick 'Import the valid rows'.")
            st.dataframe([{"row": e.row or "file", "filename": e.filename, "problems": "; ".join(e.problems)} for e in exc.report.errors],
                         key="ann-import-errors")
        else:
            (st.warning if report.errors else st.success)(md_escape(report.summary()))
with m2:
    # a callable: the whole library's table is built when the button is pressed, not on every rerun
    st.download_button("Download scores CSV", lambda: ann.export_csv_bytes(services.catalog), file_name="annotations.csv",
                       mime="text/csv", key="ann-download")
    done = ann.annotators(services.catalog)
    if done:
        labels = {f"{r['annotator']} · {r['version']} ({r['ok']} ok, {r['failed']} failed)": r for r in done}
        pick = st.selectbox("Results of", list(labels), key="ann-reset-pick")
        if st.button("Reset these results", key="ann-reset"):
            r = labels[pick]
            n = reset_results(services, r["annotator"], version=r["version"])
            st.success(f"Removed {md_escape(r['annotator'])} results for {n} photos.")
            st.rerun()
    else:
        st.caption("No annotator has run yet.")
