"""The Dashboards page in headless Chromium at 1400x1000: every chart is readable, not only correct.

Vega renders SVG here, so the test reads the drawn chart itself: the plotted area's height,
the legend's entries and which axis labels are visible (Vega hides overlapping ones with opacity 0).
"""
import re

import pytest

from tests.conftest import add_library_class, scroll_to, serve, shot, streamlit_argv

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Per chart: the plotted area(s) (the root frame, or each facet cell), legend labels, visible axis labels, facet headers.
_READ_CHART = """(root) => {
  const svg = root.querySelector('svg.marks');
  if (!svg) return null;
  const box = (el) => { const b = el.getBoundingClientRect(); return {x: b.x, y: b.y, w: b.width, h: b.height}; };
  const cells = [...svg.querySelectorAll('.role-scope.cell > g > path.background')].map(box).filter(b => b.w > 0 && b.h > 0);
  const frame = [...svg.querySelectorAll('.role-frame.root > g > path.background')].map(box).filter(b => b.w > 0 && b.h > 0);
  const visible = (sel) => [...svg.querySelectorAll(sel)].filter(t => t.getAttribute('opacity') !== '0').map(t => t.textContent);
  return {
    areas: cells.length ? cells : frame,
    legend: visible('.role-legend-label text'),
    axis: visible('.role-axis-label text'),
    headers: [...svg.querySelectorAll('.role-column-header text')].map(t => ({text: t.textContent, ...box(t)})),
    points: [...svg.querySelectorAll('.mark-symbol path')].filter(p => !p.closest('.role-legend')).map(p => p.getAttribute('transform')),
  };
}"""


@pytest.fixture
def annotated_library(demo_env_copy, bundled_backend, tmp_path):
    """The demo library plus a second class, annotated by the local zero-shot annotator."""
    from core.annotate.runner import make_annotator, run_annotations
    from core.services import build_services
    from core.settings import Settings

    services = build_services(Settings(data_dir=demo_env_copy), backend=bundled_backend)
    add_library_class(services, tmp_path / "more", "street", 4)
    run_annotations(services, make_annotator("zeroshot", services), None)
    from core import dashboards as d

    return d.frame_from_catalog(services.catalog)


def test_dashboard_charts_are_readable_at_1400x1000(annotated_library, browser_page, tmp_path):
    df = annotated_library
    sentiments = set(df["sentiment"].dropna())
    classes = set(df["class_name"].dropna())
    topics = {t for ts in df["topics"] for t in ts}
    assert len(sentiments) >= 2 and classes == {"demo", "street"} and len(topics) >= 4  # the data the charts must show

    page = browser_page
    with serve(streamlit_argv(), "/_stcore/health", tmp_path / "streamlit.log") as url:
        page.goto(url + "/dashboards", wait_until="domcontentloaded")
        page.get_by_text("photos pass the filters").wait_for()
        charts = {}
        for key in ("hist", "box", "scatter", "corr", "sentiment", "topics", "methods", "map"):
            section = page.locator(f".st-key-dash-section-{key}")
            scroll_to(section)
            section.locator("svg.marks").wait_for()
            charts[key] = section.evaluate(_READ_CHART)
            if key in ("sentiment", "topics", "methods", "scatter"):
                section.screenshot(path=str(tmp_path / f"chart-{key}.png"))
        scroll_to(page.locator(".st-key-dash-section-sentiment"))
        shot(page, tmp_path, "dashboards")

    for key, chart in charts.items():
        assert chart and chart["areas"], f"{key}: no plotted area drawn"
        assert min(a["h"] for a in chart["areas"]) >= 60, f"{key}: plotted area only {min(a['h'] for a in chart['areas']):.0f} px high"
    # Sentiment by class: a bar per class, each class labelled, every sentiment in the legend.
    assert set(charts["sentiment"]["legend"]) >= sentiments, charts["sentiment"]["legend"]
    assert classes <= set(charts["sentiment"]["axis"]), charts["sentiment"]["axis"]
    assert min(a["h"] for a in charts["sentiment"]["areas"]) >= 25 * len(classes)
    # Topics: every bar labelled.
    assert topics <= set(charts["topics"]["axis"]), (topics, charts["topics"]["axis"])
    # Scatter: integer ticks, one visible point per photo (jittered, not piled up), every sentiment in the legend.
    scored = df.dropna(subset=["Safety", "Privacy"])
    assert {"1", "2", "3", "4", "5"} <= set(charts["scatter"]["axis"]) and not any("." in t for t in charts["scatter"]["axis"])
    assert len(set(charts["scatter"]["points"])) == len(scored)
    assert set(charts["scatter"]["legend"]) >= set(scored["sentiment"].dropna())
    # Method comparison: the facet titles do not overlap.
    heads = sorted(charts["methods"]["headers"], key=lambda h: h["x"])
    assert len(heads) == 2 and heads[0]["x"] + heads[0]["w"] < heads[1]["x"], heads
    # Embedding map coloured by class: every class in the legend.
    assert set(charts["map"]["legend"]) >= classes


def test_a_big_library_keeps_its_annotations_between_reruns(annotated_library, demo_env_copy, browser_page, tmp_path, monkeypatch):
    """Above PHOTOLORE_DASH_CACHE_FROM photos the page reads the annotations once (a million took a minute on every
    rerun): a filter change does not read them again, a new correction is read alone, and Reload reads them all."""
    from core.annotations import set_corrections
    from core.catalog import Catalog
    from core.settings import Settings

    monkeypatch.setenv("PHOTOLORE_DASH_CACHE_FROM", "1")  # the eval library counts as big
    page = browser_page
    n = len(annotated_library)

    def note() -> str:
        return page.get_by_text(re.compile(r"^(Read the annotations|Re-read the|Annotations from the copy)")).first.inner_text()

    with serve(streamlit_argv(), "/_stcore/health", tmp_path / "streamlit.log") as url:
        page.goto(url + "/dashboards", wait_until="domcontentloaded")
        page.get_by_text("photos pass the filters").wait_for()
        first = note()
        assert first.startswith(f"Read the annotations of all {n} photos ("), first
        sentiment = page.locator('[data-testid="stSidebar"]').get_by_text("Sentiment", exact=True)
        page.locator(".st-key-dash-sentiments input").click()
        page.get_by_role("option", name="positive").click()
        page.keyboard.press("Escape")
        page.get_by_text(f"{int((annotated_library['sentiment'] == 'positive').sum())} of {n} photos pass", exact=False).wait_for()
        assert sentiment.count() == 1 and note() == first  # the rerun used the kept frame, timing and all
        page.locator(".st-key-dash-section-map").wait_for(state="attached", timeout=60_000)  # the kept map, filtered
        scroll_to(page.locator(".st-key-dash-section-map"))
        shot(page, tmp_path, "dashboards-kept-map")
        shot(page, tmp_path, "dashboards-kept")

        photo_id = annotated_library["photo_id"].iloc[0]
        set_corrections(Catalog(Settings(data_dir=demo_env_copy).catalog_target, library_dir=demo_env_copy / "library"),
                        {photo_id: {"Safety": 1}})
        page.locator(".st-key-dash-sentiments input").click()  # any rerun reads what changed
        page.get_by_role("option", name="negative").click()
        page.keyboard.press("Escape")
        page.get_by_text(re.compile(r"Re-read the 1 photo that changed \(")).wait_for(timeout=60_000)
        page.get_by_role("button", name="Reload").click()
        page.get_by_text(re.compile(rf"Read the annotations of all {n} photos \(")).wait_for(timeout=60_000)
        shot(page, tmp_path, "dashboards-reloaded")
