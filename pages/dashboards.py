"""Dashboards: the annotations as charts, with filters that apply to every chart."""
import pandas as pd
import streamlit as st

from core import charts
from core import dashboards as d
from core.annotations import annotations_signature
from ui.resources import services_or_stop
from ui.widgets import md_escape, photo_grid
from ui.router import ensure_router

ensure_router()

services = services_or_stop()
st.title("Dashboards")


@st.cache_resource(show_spinner=False, max_entries=1)
def _live_frame(catalog_name: str, catalog_id: int) -> d.LiveFrame:
    """A big library's frame, shared by every session and kept current (see core.annotations.live_frame)."""
    return d.live_frame(services.catalog, services.settings.annotations_frame_file)


live = None
if services.catalog.count() >= services.settings.dash_cache_from:
    live = _live_frame(services.catalog.describe(), id(services.catalog))
    bar = st.empty()

    def reading(done: int, total: int) -> None:
        bar.progress(min(done / max(total, 1), 1.0), text=f"Reading the annotations of every photo: {done:,} of {total:,} "
                                                          "(once; afterwards only the photos that changed)")

    with st.spinner("Reading the annotations…"):
        df_all = live.get(on_progress=reading)
    bar.empty()
    r1, r2 = st.columns([4, 1])
    r1.caption(f"{d.refresh_note(live.last)} New photos, edited captions, annotations and corrections are read on their own; "
               "Reload reads every photo again.")
    if r2.button("Reload", key="dash-reload"):
        live.reload(on_progress=reading)
        st.rerun()
else:
    df_all = d.frame_from_catalog(services.catalog)
if df_all.empty:
    st.info("The library is empty: add photos on the Library or Collect page, then annotate them.")
    st.stop()

# --- filters (sidebar) apply to every chart and to the table ---------------------------------------
sb = st.sidebar
sb.header("Filters")
classes = sorted(c for c in df_all["class_name"].unique())
topics = sorted({t for ts in df_all["topics"] for t in ts})
f = d.Filters(
    classes=sb.multiselect("Class", classes, key="dash-classes"),
    topics=sb.multiselect("Topic", topics, key="dash-topics"),
    sentiments=sb.multiselect("Sentiment", list(d.SENTIMENTS), key="dash-sentiments"),
)
dates = df_all["taken_at"].dropna()
if not dates.empty:
    lo, hi = dates.min().date(), dates.max().date()
    picked = sb.date_input("Taken between", (lo, hi), min_value=lo, max_value=hi, key="dash-dates")
    if isinstance(picked, (tuple, list)) and len(picked) == 2:
        f.date_from, f.date_to = pd.Timestamp(picked[0]), pd.Timestamp(picked[1]) + pd.Timedelta(days=1)
with sb.expander("Score ranges"):
    for dim in d.DIMENSIONS:
        f.score_ranges[dim] = st.slider(dim, 1, 5, (1, 5), key=f"dash-range-{dim}")
df = d.apply_filters(df_all, f)
st.caption(f"{len(df):,} of {len(df_all):,} photos pass the filters.")


@st.cache_data(show_spinner=False, max_entries=4)
def hover_thumbs(ids: tuple[str, ...]) -> dict[str, str]:
    """Small inline JPEGs for chart tooltips, cached across reruns (photo ids are content hashes)."""
    photos = services.catalog.get_many(list(ids))
    return {i: charts.thumb_data_uri(photos[i].thumb_path, 64) for i in ids if i in photos}


# Hover previews as inline images; skipped for big selections to keep the page light.
thumbs = hover_thumbs(tuple(df["photo_id"])) if len(df) <= 1000 else {}
if thumbs:
    df = df.assign(image=df["photo_id"].map(thumbs))

c1, c2, c3, c4 = st.columns(4)
box_by = c1.selectbox("Split box plots by", [None, "class_name", "topic"], key="dash-box-by",
                      format_func=lambda v: {None: "nothing", "class_name": "class", "topic": "topic"}[v])
x_dim = c2.selectbox("Scatter x", d.DIMENSIONS, index=0, key="dash-x")
y_dim = c3.selectbox("Scatter y", d.DIMENSIONS, index=4, key="dash-y")
sent_by = c4.selectbox("Sentiment by", ["class_name", None], key="dash-sent-by", format_func=lambda v: "class" if v else "overall")

@st.cache_resource(show_spinner=False, max_entries=8)
def _kept_sections(key: tuple, _frame: pd.DataFrame, box_by, x_dim: str, y_dim: str, sent_by) -> list:
    """A big library's charts, kept while the frame's generation and the filters hold (a second at a million
    photos, on every rerun: the map's brush, its colour, a download). Shared and never modified."""
    return charts.build_sections(_frame, box_by=box_by, x_dim=x_dim, y_dim=y_dim, sentiment_by_field=sent_by)


if live is not None:
    sections = _kept_sections((services.catalog.describe(), id(live), live.generation, repr(f)), df, box_by, x_dim, y_dim, sent_by)
else:
    sections = charts.build_sections(df, box_by=box_by, x_dim=x_dim, y_dim=y_dim, sentiment_by_field=sent_by)
for section in sections:
    st.subheader(section.title)
    if section.chart is None:
        st.info(md_escape(section.message))
        continue
    with st.container(key=f"dash-section-{section.key}"):  # a stable handle for the browser tests
        st.altair_chart(section.chart, width="stretch", key=f"dash-chart-{section.key}")
    if section.note:
        st.caption(md_escape(section.note))
    if section.table is not None:
        with st.expander("Numbers"):
            st.dataframe(section.table, hide_index=True, width="stretch")
    # PNG is in the chart's own toolbar; SVG is rendered only when asked for.
    st.download_button("SVG", data=lambda c=section.chart: charts.to_svg(c),
                       file_name=f"photolore-{section.key}.svg", mime="image/svg+xml", key=f"dash-svg-{section.key}",
                       on_click="ignore", icon=":material/download:")

# --- photo facts (whole library: facts are not annotations, the filters above do not apply) ----------
st.subheader("Photo facts")
facts = services.catalog.facts_summary()  # indexed columns (schema 4): cheap on every rerun
if not facts["with_facts"]:
    st.info("No photo has facts yet: update them on the Library page (or run `python -m core reindex`).")
else:
    f1, f2, f3 = st.columns(3)
    f1.metric("Photos with facts", f"{facts['with_facts']} of {facts['photos']}")
    f2.metric("With people", f"{facts['with_people'] / facts['with_facts']:.0%}")
    f3.metric("With text", f"{facts['with_text'] / facts['with_facts']:.0%}")
    if facts["scenes"]:
        st.bar_chart(pd.DataFrame({"scene": list(facts["scenes"]), "photos": list(facts["scenes"].values())}),
                     x="scene", y="photos", horizontal=True)
    st.caption("Whole library; shares are of the photos with facts. Search filters by the same facts.")

# --- embedding map ----------------------------------------------------------------------------------
st.subheader("Embedding map")
model_id = services.backend.model_id


def _map_data(frame: pd.DataFrame, colour_by: str, method: str) -> tuple:
    """(points, projection used, photos sampled, a note) for the map; points None when fewer than 3 are indexed.
    A fixed sample of at most MAX_MARKS photos, every colour group kept, is fetched and projected: the browser
    draws one point per photo, and a million vectors would not fit one request anyway."""
    shown = d.sample_rows(frame, colour_by, charts.MAX_MARKS)
    vectors = services.store.get_embeddings(model_id, "image", shown["photo_id"].tolist())
    keep = [i for i in shown["photo_id"] if i in vectors]
    if len(keep) < 3:
        return None, None, len(shown), None
    try:
        return (*d.embedding_map_frame(keep, [vectors[i] for i in keep], shown, method=method), len(shown), None)
    except d.NotEnoughData as exc:
        return (*d.embedding_map_frame(keep, [vectors[i] for i in keep], shown, method="pca"), len(shown), str(exc))


@st.cache_data(show_spinner=False, max_entries=4)
def _kept_map_data(key: tuple, _frame: pd.DataFrame, colour_by: str, method: str) -> tuple:
    """_map_data of a big library's frame, kept while `key` (the frame's generation, the filters, the index) holds:
    the brush and every other widget rerun the page, and the sample, the vector fetch and PCA cost seconds at 1M."""
    return _map_data(_frame, colour_by, method)


frame = None
if not df.empty and services.store.count(model_id, "image") >= 3:
    m1, m2 = st.columns(2)
    colour_by = m1.selectbox("Colour by", ["class_name", "sentiment", *d.DIMENSIONS], key="dash-map-colour")
    method = m2.radio("Projection", ["auto", "pca", "umap"], horizontal=True, key="dash-map-method",
                      help="auto: UMAP when installed and there are enough photos, else PCA")
    if live is not None:
        key = (services.catalog.describe(), id(live), live.generation, repr(f), model_id, services.store.count(model_id, "image"))
        frame, used, n_shown, note = _kept_map_data(key, df, colour_by, method)
    else:
        frame, used, n_shown, note = _map_data(df, colour_by, method)
    if note:
        st.info(md_escape(note))
if frame is None:
    st.info("The embedding map needs at least 3 photos indexed by the active backend (see the Library page).")
else:
    if thumbs:
        frame["image"] = frame["photo_id"].map(thumbs)
    sampled = f" Showing {len(frame):,} of {len(df):,} photos: a fixed sample that keeps every colour group." if n_shown < len(df) else ""
    st.caption(f"{used} projection of {len(frame)} image embeddings ({model_id}).{sampled} Drag a box to select photos.")
    with st.container(key="dash-section-map"):
        event = st.altair_chart(charts.embedding_map(frame, colour_by, used, select=True), width="stretch",
                                key="dash-map", on_select="rerun", selection_mode="brush")
    box = (event.selection or {}).get("brush", {}) if event else {}
    if box.get("x") and box.get("y"):
        (x0, x1), (y0, y1) = sorted(box["x"]), sorted(box["y"])
        chosen = frame[frame["x"].between(x0, x1) & frame["y"].between(y0, y1)]["photo_id"].tolist()
        st.write(f"{len(chosen)} photos selected")
        photos = services.catalog.get_many(chosen[:48])
        photo_grid([(photos[i], None) for i in chosen[:48] if i in photos], key="dash-selected", services=services)

# Written when clicked, not on every rerun: at a million photos the CSV takes seconds to build.
st.download_button("Download the filtered table (CSV)",
                   data=lambda: df.drop(columns=["image", d.ORDER], errors="ignore").assign(topics=df["topics"].map(",".join)).to_csv(index=False),
                   file_name="photolore-annotations.csv", mime="text/csv", key="dash-csv", on_click="ignore")
