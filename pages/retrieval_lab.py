"""Retrieval lab: compare classical and deep retrieval on a dataset, and see why a photo matches a text."""
from __future__ import annotations

from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from core.settings import Settings
from ui.widgets import md_escape
from ui.router import ensure_router

ensure_router()


@st.cache_resource(show_spinner="Loading the deep-retrieval model ...")
def deep_backend(backbone: str):
    from core.retrieval.deep import make_deep_backend

    return make_deep_backend(backbone, Settings())


@st.cache_resource(show_spinner="Loading the heat-map model ...")
def explain_model(backbone: str):
    if backbone == "efficientnet":
        from models.efficientnet import load_efficientnet_lite0

        return load_efficientnet_lite0()
    return deep_backend("active")


def run_lab(kind: str, path: str, limit, n: int, methods: tuple, params: dict, backbone: str, progress) -> dict:
    """Load the dataset and evaluate; returns the report as a JSON-ready dict."""
    from core.retrieval.classical import ClassicalConfig
    from core.retrieval.datasets import load_dataset
    from core.retrieval.deep import DeepConfig
    from core.retrieval.evaluate import EvalConfig, run_evaluation

    ds = load_dataset(kind, Path(path) if path else None, limit=limit, n=n)
    config = EvalConfig(methods=methods, n_queries=params["queries"], ks=(1, 5, 10), depth=params["depth"],
                        classical=ClassicalConfig(vocab_size=params["vocab"], n_clusters=params["clusters"], n_probe=params["probe"],
                                                  candidate_batch=params["batch"], threshold=params["c_thr"]),
                        deep=DeepConfig(threshold=params["d_thr"]))
    backend = deep_backend(backbone) if "deep" in methods else None
    report = run_evaluation(ds, config, backend=backend, on_progress=progress)
    return {"json": report.to_json(), "csv": report.to_csv(), "table": report.table(), "curves": report.curves(), "dataset": report.dataset,
            "asked": params["queries"], "depth": params["depth"]}


st.title("Retrieval lab")
st.caption("Classical (SIFT + HOG + colour/shape histograms, bag of visual words, PCA, k-means) against deep retrieval "
           "(the active backend's embeddings), with a random ranking as the chance baseline.")

with st.form("rl_form"):
    c1, c2 = st.columns(2)
    kind = c1.selectbox("Dataset", ["shapes", "folders", "cifar10", "voc2007"], key="rl_kind",
                        format_func=lambda k: {"shapes": "Generated shapes", "folders": "Class folders", "cifar10": "CIFAR-10 (python format)", "voc2007": "PASCAL VOC2007"}[k])
    path = c2.text_input("Dataset folder (not needed for shapes)", key="rl_path")
    c1, c2, c3 = st.columns(3)
    n = c1.number_input("Shapes: images", 18, 2000, 108, step=18, key="rl_n")
    limit = c2.number_input("Limit images (0 = all)", 0, 100000, 300, key="rl_limit")
    queries = c3.number_input("Queries", 1, 1000, 18, key="rl_queries")
    methods = st.multiselect("Methods", ["classical", "deep", "random"], default=["classical", "deep", "random"], key="rl_methods")
    st.markdown("**Classical parameters**")
    c1, c2, c3, c4 = st.columns(4)
    vocab = c1.number_input("Bag-of-features size", 2, 4096, 64, key="rl_vocab")
    clusters = c2.number_input("Clusters", 1, 512, 8, key="rl_clusters")
    probe = c3.number_input("Clusters probed", 1, 512, 2, key="rl_probe")
    batch = c4.number_input("Candidate batch", 1, 100000, 256, key="rl_batch")
    st.markdown("**Match thresholds and backbone**")
    c1, c2, c3, c4 = st.columns(4)
    c_thr = c1.slider("Classical threshold", -1.0, 1.0, 0.8, 0.01, key="rl_cthr")
    d_thr = c2.slider("Deep threshold", -1.0, 1.0, 0.75, 0.01, key="rl_dthr")
    backbone = c3.selectbox("Deep backbone", ["active", "efficientnet"], key="rl_backbone",
                            help="active: the app's backend (bundled or CLIP); efficientnet: the packaged CNN's features alone")
    depth = c4.number_input("Ranking depth", 10, 1000, 40, key="rl_depth")
    submitted = st.form_submit_button("Run evaluation")

if submitted:
    if not methods:
        st.error("Pick at least one method.")
    else:
        bar = st.progress(0.0, text="starting ...")

        def progress(done: int, total: int, **info) -> None:
            bar.progress(min(done / max(total, 1), 1.0), text=f"{info.get('stage', '')}: {done}/{total}")

        params = dict(queries=int(queries), depth=int(depth), vocab=int(vocab), clusters=int(clusters), probe=int(probe), batch=int(batch),
                      c_thr=float(c_thr), d_thr=float(d_thr))
        try:
            st.session_state["rl_result"] = run_lab(kind, path.strip(), int(limit) or None, int(n), tuple(methods), params, backbone, progress)
            bar.empty()
        except (ValueError, FileNotFoundError) as exc:  # DatasetError is a ValueError
            bar.empty()
            st.error(str(exc))

result = st.session_state.get("rl_result")
if result:
    st.subheader(f"Results on {result['dataset']}")
    table = pd.DataFrame(result["table"])
    used = int(table["n_queries"].min())
    if used < result.get("asked", used):
        st.caption(f"{used} of the {result['asked']} queries asked: every class keeps at least one photo in the gallery, "
                   "so a query always has an answer; add images for more queries.")
    # Metrics as rows and methods as columns: ~25 metrics side by side ran off the right edge.
    shown = table.set_index("method").T.map(lambda v: f"{v:.4g}" if isinstance(v, float) else str(v))
    st.dataframe(shown.rename_axis("metric"), key="rl_table", width="stretch")
    c1, c2 = st.columns(2)
    c1.altair_chart(alt.Chart(table).mark_bar().encode(x=alt.X("method:N"), y=alt.Y("mAP:Q"), color="method:N").properties(title="mAP"), width="stretch")
    lat = table.melt(id_vars=["method"], value_vars=["query_p50_ms", "query_p95_ms"], var_name="percentile", value_name="ms")
    c2.altair_chart(alt.Chart(lat).mark_bar().encode(x="method:N", y="ms:Q", color="percentile:N", xOffset="percentile:N").properties(title="Query latency"),
                    width="stretch")
    curves = pd.DataFrame(result["curves"])
    # Dashes and points keep a line visible where it runs on top of another one.
    st.altair_chart(alt.Chart(curves).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=alt.X("k:Q"), y=alt.Y("precision:Q", title="precision@k"), color="method:N", strokeDash="method:N").properties(title="Precision at k"),
        width="stretch")
    gallery = int(table["n_gallery"].min())
    if gallery < result.get("depth", gallery):
        st.caption(f"Precision@k is drawn up to k = {gallery}, the gallery size, not to the ranking depth {result['depth']}: "
                   "beyond it every method has returned every photo, so their curves would be the same.")
    c1, c2 = st.columns(2)
    c1.download_button("Download JSON", result["json"], file_name="retrieval_eval.json", mime="application/json", key="rl_dl_json")
    c2.download_button("Download CSV", result["csv"], file_name="retrieval_eval.csv", mime="text/csv", key="rl_dl_csv")

st.divider()
st.subheader("Why this match")
st.caption("A heat map of where the model sees the text in the photo: Grad-CAM for CNNs, gradient-weighted attention for CLIP ViTs.")
upload = st.file_uploader("Photo", type=["jpg", "jpeg", "png", "webp", "bmp"], key="rl_explain_file")
text = st.text_input("Text", "a red circle", key="rl_explain_text")
ex_backbone = st.selectbox("Model", ["active", "efficientnet"], key="rl_explain_backbone")
if st.button("Explain", key="rl_explain_go", disabled=upload is None):
    from core.explain import explain, gradcam_efficientnet
    from core.images import ImageError, decode_image

    try:
        image = decode_image(upload.getvalue(), name=upload.name).image
    except ImageError as exc:
        st.error(f"{md_escape(upload.name)}: {md_escape(exc.reason)}")
    else:
        model = explain_model(ex_backbone)
        result_ex = gradcam_efficientnet(model, image, text) if ex_backbone == "efficientnet" else explain(model, image, text)
        c1, c2 = st.columns(2)
        c1.image(image, caption="photo")
        c2.image(result_ex.overlay, caption=f"{result_ex.method}")
        # Targets are model/class names and the user's text: shown as plain text only.
        st.text("explained: " + ", ".join(f"{t} ({w:.2f})" for t, w in result_ex.targets))
