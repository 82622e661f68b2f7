"""Collect: crawl web pages for photos by class, or upload / import photos, into the library."""
from __future__ import annotations


import streamlit as st

from core.crawl.config import CrawlConfig, parse_seed_lines
from core.crawl.job import CollectJob, ingest_with
from core.settings import Settings
from ui.resources import services_or_stop
from ui.widgets import add_photos_panel, md_escape, show_last_report
from ui.router import ensure_router

ensure_router()


@st.cache_resource(show_spinner=False)
def _jobs() -> dict[str, CollectJob]:
    """Running and finished collect jobs of this server process, by id (session_state keeps only the id)."""
    return {}


settings = Settings()
st.title("Collect photos")
st.caption(f"Photos are saved to `{settings.library_dir}` as `<class>/<file>`, then added to the catalog and index.")

crawl_tab, upload_tab = st.tabs(["Crawl the web", "Upload or import"])

with crawl_tab:
    with st.form("collect_form"):
        seeds_text = st.text_area(
            "Start pages: one per line, `class: URL` or a bare URL",
            placeholder="living room: https://example.org/gallery/living-rooms\nkitchen: https://example.org/gallery/kitchens",
            key="collect_seeds", height=120)
        c1, c2, c3, c4 = st.columns(4)
        max_pages = c1.number_input("Max pages", 1, 10_000, 30, key="collect_max_pages")
        max_images = c2.number_input("Max photos", 1, 100_000, 100, key="collect_max_images")
        max_depth = c3.number_input("Link depth", 0, 10, 2, key="collect_max_depth")
        workers = c4.number_input("Download workers", 1, 32, 4, key="collect_workers")
        c5, c6, c7 = st.columns(3)
        render = c5.radio("Pages", ["static", "js"], format_func={"static": "Static HTML", "js": "Render JavaScript (Chromium)"}.get,
                          key="collect_render", horizontal=True)
        scope = c6.radio("Follow links", ["host", "prefix"], format_func={"host": "Same site", "prefix": "Under the start URL"}.get,
                         key="collect_scope", horizontal=True)
        delay = c7.number_input("Seconds between requests per site", 0.0, 30.0, 0.5, step=0.5, key="collect_delay")
        with st.expander("Advanced"):
            a1, a2, a3 = st.columns(3)
            min_size = a1.number_input("Minimum width/height (px)", 1, 4096, 64, key="collect_min_size")
            near_dup = a2.number_input("Near-duplicate distance (-1: off)", -1, 64, settings.near_dup_threshold, key="collect_near_dup")
            max_mb = a3.number_input("Max MB per photo", 1, 500, 20, key="collect_max_mb")
            allow_private = st.checkbox("Allow private and local addresses (only for a site you trust on your network)",
                                        key="collect_allow_private")
            retry_failed = st.checkbox("Retry photos that timed out or failed on the server last time", key="collect_retry_failed")
            ingest = st.checkbox("Add collected photos to the catalog and index", value=True, key="collect_ingest")
        start = st.form_submit_button("Start", type="primary")

    if start:
        try:
            seeds = parse_seed_lines(seeds_text)
            if not seeds:
                raise ValueError("add at least one start page")
            config = CrawlConfig.from_settings(
                settings, seeds, max_pages=int(max_pages), max_images=int(max_images), max_depth=int(max_depth),
                workers=int(workers), render=render, scope=scope, delay_s=float(delay), min_width=int(min_size),
                min_height=int(min_size), near_dup_threshold=int(near_dup), max_bytes=int(max_mb) * 1_000_000,
                allow_private=allow_private, retry_failed=retry_failed)
        except ValueError as exc:
            st.error(f"Cannot start: {md_escape(exc)}")
        else:
            job = CollectJob(config, ingest_with(services_or_stop()) if ingest else None).start()
            _jobs()[job.id] = job
            st.session_state["collect_job"] = job.id

    job = _jobs().get(st.session_state.get("collect_job", ""))
    if job is not None:
        running = not job.snapshot().finished

        @st.fragment(run_every=1.0 if running else None)
        def _status() -> None:
            snap = job.snapshot()
            label = {"running": "Crawling", "ingesting": "Adding to the catalog"}.get(snap.state, snap.state.capitalize())
            st.progress(min(1.0, snap.done / snap.total) if snap.total else 0.0, text=f"{label}: {snap.done} / {snap.total}")
            m1, m2, m3, m4 = st.columns(4)
            m1.metric("Pages visited", snap.pages_visited)
            m2.metric("Photos found", snap.images_found)
            m3.metric("Downloaded", snap.saved)
            m4.metric("Skipped", snap.skipped)
            if not snap.finished:
                if snap.current_url:
                    st.caption("Now: " + md_escape(snap.current_url))  # escaped: a URL is data
                if st.button("Cancel", key="collect_cancel"):
                    job.cancel()
                    st.info("Cancelling... start the same crawl again later to resume.")
                return
            if snap.state == "failed":
                st.error(md_escape(snap.error))
            elif snap.state == "cancelled":
                st.warning(f"Cancelled after {snap.saved} photos. Start the same crawl again to resume.")
            elif snap.warning:
                st.warning(md_escape(snap.warning).replace("\n", "  \n"))  # URLs and reasons are data: escaped
            else:
                st.success(f"Done: {snap.saved} new photos saved" + (f" (stopped by {snap.stopped_by})" if snap.stopped_by else "")
                           + (f". Catalog: {snap.ingest_summary}" if snap.ingest_summary else "."))
            if snap.skipped_items:
                st.subheader("Skipped")
                st.dataframe(snap.skipped_items, hide_index=True, key="collect_skipped_table",
                             column_config={"url": st.column_config.TextColumn("URL"), "reason": st.column_config.TextColumn("Reason")})
            if running:
                st.rerun()  # the job just finished: render once more without the poll timer

        _status()

with upload_tab:
    show_last_report("collect-add-report")
    add_photos_panel(services_or_stop(), key="collect-add")
