"""Charts are drawn from numbers aggregated on the server: each aggregate is checked against a plain
count or numpy on a small frame, and no chart of a 200k-photo library sends over MAX_MARKS rows."""
import time

import numpy as np
import pandas as pd
import pytest

from bench.bench_dashboards import synthetic
from core import charts
from core import dashboards as d


def small(n=60, seed=0):
    return d.normalise(synthetic(n, seed=seed))


@pytest.fixture(scope="module")
def big():
    """200k photos with the dashboards frame's columns; some scores and sentiments missing, as in a real library."""
    df = synthetic(200_000, seed=1)
    rng = np.random.default_rng(2)
    df.loc[rng.random(len(df)) < 0.1, "Privacy"] = np.nan
    df.loc[rng.random(len(df)) < 0.05, "sentiment"] = None
    return d.normalise(df)


def test_histogram_counts_are_value_counts():
    df = small()
    df.loc[:4, "Safety"] = np.nan
    h = d.histogram_frame(df).set_index(["dimension", "score"])["count"]
    for dim in d.DIMENSIONS:
        expected = df[dim].dropna().astype(int).value_counts()
        assert [h[(dim, v)] for v in range(1, 6)] == [int(expected.get(v, 0)) for v in range(1, 6)]
    assert h.loc["Safety"].sum() == len(df) - 5


def test_box_quartiles_are_numpys():
    df = small(101)
    stats = d.box_stats(df).set_index("dimension")
    for dim in d.DIMENSIONS:
        q = np.percentile(df[dim].dropna(), [0, 25, 50, 75, 100])
        np.testing.assert_allclose(stats.loc[dim, ["min", "q1", "median", "q3", "max"]].astype(float), q)
        assert stats.loc[dim, "photos"] == df[dim].notna().sum()
    by_class = d.box_stats(df, by="class_name").set_index(["class_name", "dimension"])
    kitchen = df.loc[df["class_name"] == "kitchen", "Belonging"]
    np.testing.assert_allclose(by_class.loc[("kitchen", "Belonging"), ["q1", "median", "q3"]].astype(float),
                               np.percentile(kitchen, [25, 50, 75]))
    # by topic: a photo counts in each of its topics
    by_topic = d.box_stats(df, by="topic").set_index(["topic", "dimension"])
    food = df[df["topics"].map(lambda t: "food" in t)]
    assert by_topic.loc[("food", "Safety"), "photos"] == len(food)
    assert by_topic.loc[("food", "Safety"), "median"] == np.median(food["Safety"])


def test_box_stats_from_counts_equal_pandas_quantiles(big):
    """The counting path (whole scores 1-5) gives what pandas' grouped quantiles give, for every split;
    a score that is not a whole number takes pandas' path."""
    df = big.iloc[:20_000].copy()
    df.loc[df.index[:300], "class_name"] = None  # photos without a group are left out by both
    for by in (None, "class_name", "topic"):
        fast = d.box_stats(df, by=by)
        src = df[["topics", *d.DIMENSIONS]].explode("topics").rename(columns={"topics": "topic"}) if by == "topic" else df
        slow = d._box_stats_any(src, by, list(d.DIMENSIONS))
        assert d._box_stats_of_whole_scores(src, by, list(d.DIMENSIONS)) is not None
        pd.testing.assert_frame_equal(fast, slow, check_dtype=False)
    odd = df.astype({"Safety": "float64"})
    odd.loc[odd.index[0], "Safety"] = 3.5
    assert d._box_stats_of_whole_scores(odd, None, list(d.DIMENSIONS)) is None
    assert d.box_stats(odd).set_index("dimension").loc["Safety", "max"] <= 5


def test_binned_scatter_cells_sum_to_the_scored_photos():
    df = small(500)
    df.loc[:49, "Privacy"] = np.nan
    df.loc[50:59, "sentiment"] = None
    cells = d.score_cells(df, "Safety", "Privacy")
    assert cells["photos"].sum() == 450 and len(cells) <= 25
    assert (cells[["negative", "neutral", "positive", "unknown"]].sum(axis=1) == cells["photos"]).all()
    assert cells["unknown"].sum() == 10
    one = cells.set_index(["x", "y"]).loc[(2, 4)]
    picked = df[(df["Safety"] == 2) & (df["Privacy"] == 4)]
    assert one["photos"] == len(picked) and one["positive"] == (picked["sentiment"] == "positive").sum()
    rated = one[["negative", "neutral", "positive"]].sum()
    assert one["net"] == pytest.approx((one["positive"] - one["negative"]) / rated)


def test_scatter_is_per_photo_when_small_and_binned_when_large(big):
    df = small(200)
    assert charts.data_rows(charts.scatter(df, "Safety", "Privacy")[0]) == 200  # hover and jitter per photo
    chart, table, note = charts.scatter(big, "Safety", "Privacy")
    scored = big[["Safety", "Privacy"]].notna().all(axis=1).sum()
    assert charts.data_rows(chart) == len(table) <= 25 and table["photos"].sum() == scored
    assert f"{scored} photos" in note


def test_embedding_sample_keeps_every_colour_group_and_is_deterministic(big):
    frame = big.assign(class_name=np.where(np.arange(len(big)) < 3, "rare", big["class_name"]))
    one = d.sample_rows(frame, "class_name", charts.MAX_MARKS)
    assert len(one) <= charts.MAX_MARKS and len(one) > 0.95 * charts.MAX_MARKS
    assert set(one["class_name"]) == set(frame["class_name"]) and (one["class_name"] == "rare").sum() == 3
    shuffled = d.sample_rows(frame.sample(frac=1, random_state=5), "class_name", charts.MAX_MARKS)
    assert sorted(one["photo_id"]) == sorted(shuffled["photo_id"])  # the same photos, whatever the row order
    # a group three times as large keeps about three times the points: 100 each, the rest in proportion
    skewed = frame.assign(class_name=np.where(np.arange(len(frame)) % 4 == 0, "garden", "kitchen"))
    counts = d.sample_rows(skewed, "class_name", charts.MAX_MARKS)["class_name"].value_counts()
    assert abs(counts["kitchen"] - (100 + 4800 * 0.75)) <= 2 and abs(counts["garden"] - (100 + 4800 * 0.25)) <= 2, counts
    # a score colour with missing values: the missing ones are a group too
    by_score = d.sample_rows(frame, "Privacy", charts.MAX_MARKS)
    assert by_score["Privacy"].isna().any() and set(by_score["Privacy"].dropna()) == {1, 2, 3, 4, 5}
    small_frame = frame.head(100)
    assert d.sample_rows(small_frame, "class_name", charts.MAX_MARKS) is small_frame
    drawn = charts.embedding_map(frame.assign(x=0.0, y=0.0), "class_name", "PCA")
    assert charts.data_rows(drawn) == len(one)


def test_data_rows_counts_layers_facets_and_concats():
    import altair as alt

    a = alt.Chart(pd.DataFrame({"v": range(7000)})).mark_point().encode(x="v:Q")
    b = alt.Chart(pd.DataFrame({"v": range(3)})).mark_rule().encode(x="v:Q")
    assert charts.data_rows(a) == 7000  # counted, not refused by altair's 5000-row guard
    assert charts.data_rows(a + b) == 7003
    assert charts.data_rows(alt.vconcat(a, b | b)) == 7003  # identical datasets are sent once
    assert charts.data_rows(alt.Chart({"values": [{"v": 1}, {"v": 2}]}).mark_point().encode(x="v:Q")) == 2
    assert charts.data_rows(b.facet(column="v:N")) == 3


def test_every_chart_of_200k_photos_stays_under_max_marks_and_builds_fast(big):
    t0 = time.perf_counter()
    sections = charts.build_sections(big)
    built = time.perf_counter() - t0
    drawn = {s.key: s for s in sections if s.chart is not None}
    assert set(drawn) == {"hist", "box", "scatter", "corr", "sentiment", "topics", "time", "methods", "truth"}, \
        {s.key: s.message for s in sections}
    rows = {key: charts.data_rows(s.chart) for key, s in drawn.items()}
    assert max(rows.values()) <= charts.MAX_MARKS, rows
    assert built < 5, f"build_sections took {built:.1f}s on 200k photos"
    for box_by, groups in (("class_name", 4), ("topic", 6)):  # one row per (group, dimension)
        box = {s.key: s for s in charts.build_sections(big, box_by=box_by)}["box"]
        assert charts.data_rows(box.chart) == 6 * groups
    # the SVG export goes through altair's own to_dict, which refuses charts over 5000 rows
    assert charts.to_svg(drawn["box"].chart).startswith("<svg")
    # the report (python -m core report): the Vega libraries inlined are most of it, not the data
    assert len(charts.report_html(sections)) < 2_000_000


def test_many_categories_show_the_largest_and_say_so():
    n = 9000
    df = d.normalise(synthetic(n, seed=3).assign(
        class_name=[f"class {i % 80}" for i in range(n)], topics=[[f"t{i % 50}", f"t{i % 7}"] for i in range(n)],
        taken_at=pd.Timestamp("1800-01-01") + pd.to_timedelta(np.arange(n) * 10, unit="D")))
    assert len(d.over_time(df)) > charts.MAX_MARKS  # monthly, this timeline would be too many bars
    by = {s.key: s for s in charts.build_sections(df, box_by="class_name")}
    assert charts.data_rows(by["sentiment"].chart) <= 3 * charts.TOP_GROUPS["sentiment"] and "of 80" in by["sentiment"].note
    assert len(by["sentiment"].table) == len(d.sentiment_breakdown(df, by="class_name"))  # the table keeps them all
    assert charts.data_rows(by["topics"].chart) == charts.TOP_GROUPS["topics"] and "of 50 topics" in by["topics"].note
    assert charts.data_rows(by["box"].chart) == 6 * charts.TOP_GROUPS["box"] and "of 80" in by["box"].note
    # ~250 years of photos: counted per year instead
    assert charts.data_rows(by["time"].chart) <= 3 * 250


@pytest.mark.slow
def test_page_bins_and_samples_past_max_marks(demo_env_copy, bundled_backend, monkeypatch):
    """The Dashboards page with MAX_MARKS lowered to 5 over the annotated demo (15 photos): the scatter
    is binned and says so, the embedding map projects a 5-photo sample and says so."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from core.annotate.runner import run_annotations
    from core.annotate.zeroshot import ZeroShotAnnotator
    from core.services import build_services
    from core.settings import Settings
    from tests.conftest import REPO

    services = build_services(Settings(), backend=bundled_backend)
    assert run_annotations(services, ZeroShotAnnotator(bundled_backend)).done == 15
    monkeypatch.setattr(charts, "MAX_MARKS", 5)
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(REPO / "pages/dashboards.py"), default_timeout=180).run()
        assert not at.exception, [e.value for e in at.exception]
        captions = [c.value for c in at.caption]
        assert any("15 photos binned by score" in c for c in captions), captions
        assert any("projection of 5 image embeddings" in c and "Showing 5 of 15 photos" in c for c in captions), captions
    finally:
        st.cache_resource.clear()
