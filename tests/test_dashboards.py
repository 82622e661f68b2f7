"""Dashboard numbers on small known inputs (checked against scikit-learn) and bad-input messages."""
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score, confusion_matrix, f1_score

from core import charts
from core import dashboards as d

S = list(d.SENTIMENTS)


def frame(n=40, seed=0, **over):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "photo_id": [f"p{i}" for i in range(n)], "filename": [f"{i}.jpg" for i in range(n)],
        "class_name": rng.choice(["kitchen", "garden"], n), "caption": "a room",
        "sentiment": rng.choice(S, n), "sentiment_caption": rng.choice(S, n), "sentiment_image": rng.choice(S, n),
        "topics": [["home"] if i % 2 else ["food", "home"] for i in range(n)],
        "taken_at": pd.date_range("2024-01-01", periods=n, freq="7D"), "concept_text": "a space",
        **{k: rng.integers(1, 6, n) for k in d.DIMENSIONS},
    })
    for k, v in over.items():
        df[k] = v
    return d.normalise(df)


def test_kappa_f1_and_confusion_match_scikit_learn():
    rng = np.random.default_rng(3)
    a = rng.choice(S, 200)
    b = np.where(rng.random(200) < 0.6, a, rng.choice(S, 200))
    assert d.cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b, labels=S))
    assert d.macro_f1(a, b) == pytest.approx(f1_score(a, b, labels=S, average="macro"))
    np.testing.assert_array_equal(d.confusion(a, b), confusion_matrix(a, b, labels=S))
    two = ["positive", "neutral"] * 5  # labels absent from both sides don't count in macro-F1
    assert d.macro_f1(two, two[::-1]) == pytest.approx(f1_score(two, two[::-1], average="macro"))


def test_known_small_values():
    assert d.cohen_kappa(["positive"] * 4, ["positive"] * 4) == 1.0
    assert d.cohen_kappa(["positive", "negative"], ["negative", "positive"]) == pytest.approx(-1.0)
    df = frame(6, sentiment=["positive"] * 6, sentiment_caption=["positive"] * 3 + ["negative"] * 3)
    agree = d.method_agreement(df).set_index(["method_a", "method_b"])
    assert agree.loc[("caption only", "combined"), "agreement"] == 0.5
    df["sentiment_truth"] = ["positive"] * 6
    t = d.truth_metrics(df).set_index("method")
    assert t.loc["combined", "accuracy"] == 1.0 and t.loc["caption only", "accuracy"] == 0.5


def test_histogram_counts_every_score_and_breakdowns_share_to_one():
    df = frame(50)
    h = d.histogram_frame(df)
    assert len(h) == 30 and h.groupby("dimension")["count"].sum().eq(50).all()
    b = d.sentiment_breakdown(df, by="class_name")
    assert b.groupby("class_name")["share"].sum().round(9).eq(1).all()
    t = d.topic_breakdown(df).set_index("topic")
    assert t.loc["home", "count"] == 50 and t.loc["food", "share"] == 0.5


def test_filters_apply_to_rows():
    df = frame(40)
    out = d.apply_filters(df, d.Filters(classes=["kitchen"], topics=["food"], score_ranges={"Safety": (4, 5)}))
    assert (out["class_name"] == "kitchen").all() and out["topics"].map(lambda t: "food" in t).all() and out["Safety"].ge(4).all()
    dated = d.apply_filters(df, d.Filters(date_from=pd.Timestamp("2024-02-01"), date_to=pd.Timestamp("2024-03-01")))
    assert 3 <= len(dated) <= 5


def test_bad_inputs_give_messages_not_errors():
    empty = charts.build_sections(d.normalise(pd.DataFrame(columns=["photo_id"])))
    assert empty[0].message and "empty" in empty[0].message
    unannotated = d.normalise(pd.DataFrame({"photo_id": ["a", "b"], "filename": ["a.jpg", "b.jpg"], "class_name": ["x", "x"]}))
    sections = charts.build_sections(unannotated)
    assert all(s.chart is None and s.message for s in sections)
    constant = frame(10, **{dim: [3] * 10 for dim in d.DIMENSIONS})
    by_key = {s.key: s for s in charts.build_sections(constant)}
    assert "vary" in by_key["corr"].message and by_key["hist"].chart is not None
    single = frame(10, class_name=["only"] * 10)
    assert {s.key: s for s in charts.build_sections(single)}["sentiment"].chart is not None


def test_projection_is_deterministic_and_separates_clusters():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0, 0.1, (20, 16)) + 3, rng.normal(0, 0.1, (20, 16)) - 3])
    c1, used = d.project_2d(x, method="pca")
    c2, _ = d.project_2d(x, method="pca")
    np.testing.assert_array_equal(c1, c2)
    assert used == "PCA" and (np.sign(c1[:20, 0]) != np.sign(c1[20:, 0])).all()
    with pytest.raises(d.NotEnoughData):
        d.project_2d(x[:2])


def test_report_is_self_contained_html(tmp_path):
    html = charts.report_html(charts.build_sections(frame(30)))
    assert html.startswith("<!DOCTYPE html>") and "vega" in html
    assert "<script src=\"http" not in html  # libraries inlined: opens offline


def test_report_command(demo_env, tmp_path):
    from core.cli import main

    out = tmp_path / "r.html"
    assert main(["report", "--out", str(out)]) == 0
    text = out.read_text()
    assert "PhotoLore report: 15 photos" in text
    assert "no photo has affective scores yet" in text  # the demo is not annotated: said, not drawn


@pytest.mark.slow
def test_dashboards_on_the_annotated_demo_library(demo_env_copy, bundled_backend):
    """Annotate the demo with the local zero-shot annotator: every annotation chart is drawn."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from core.annotate.runner import run_annotations
    from core.annotate.zeroshot import ZeroShotAnnotator
    from core.services import build_services
    from core.settings import Settings
    from tests.conftest import REPO

    services = build_services(Settings(), backend=bundled_backend)
    assert run_annotations(services, ZeroShotAnnotator(bundled_backend)).done == 15
    df = d.frame_from_catalog(services.catalog)
    assert len(df) == 15 and df["Safety"].notna().all() and df["sentiment"].isin(d.SENTIMENTS).all()
    sections = {s.key: s for s in charts.build_sections(df)}
    for key in ("hist", "box", "scatter", "sentiment", "topics", "methods"):
        assert sections[key].chart is not None, (key, sections[key].message)
    assert "ground-truth" in sections["truth"].message  # nothing imported: said, not invented

    st.cache_resource.clear()
    at = AppTest.from_file(str(REPO / "pages/dashboards.py"), default_timeout=180).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not any("affective scores yet" in i.value for i in at.info)
    st.cache_resource.clear()
