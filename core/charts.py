"""Altair charts for the dashboards, shared by the page and the HTML report. No streamlit here.

Every chart is drawn from numbers aggregated in pandas (core/dashboards.py), not one row per photo: the
browser gets the chart's data rows whole, so at a million photos a per-photo chart would ship
millions of rows and stall the page. MAX_MARKS bounds the rows of any one chart.
"""
from __future__ import annotations

import base64
import io
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import altair as alt
import pandas as pd

from core import dashboards as d

SENTIMENT_SCALE = alt.Scale(domain=list(d.SENTIMENTS), range=["#d62728", "#9e9e9e", "#2ca02c"])
MAX_MARKS = 5000  # data rows one chart may send to the browser
# Categories drawn per chart (the "Numbers" table keeps them all): past these a chart is unreadable anyway.
TOP_GROUPS = {"box": 10, "sentiment": 30, "topics": 30}


@dataclass
class Section:
    """One dashboard block: a chart, or the reason it cannot be drawn."""

    key: str
    title: str
    chart: Optional[alt.TopLevelMixin] = None
    message: Optional[str] = None
    table: Optional[pd.DataFrame] = None
    note: Optional[str] = None  # said under the chart, e.g. that it shows the largest groups only


def _safe(key: str, title: str, build: Callable[[], tuple]) -> Section:
    try:
        chart, table, *note = build()
        return Section(key, title, chart=chart, table=table, note=note[0] if note else None)
    except d.NotEnoughData as exc:
        return Section(key, title, message=str(exc))


def histograms(df: pd.DataFrame) -> tuple:
    h = d.histogram_frame(df)
    chart = alt.Chart(h).mark_bar().encode(
        x=alt.X("score:O", title="score"), y=alt.Y("count:Q"), tooltip=["dimension", "score", "count"],
    ).properties(width=150, height=120).facet(facet=alt.Facet("dimension:N", sort=list(d.DIMENSIONS), title=None), columns=3)
    return chart, h


def data_rows(chart: alt.TopLevelMixin) -> int:
    """Data rows the chart sends to the browser: every dataset and inline value list, at any depth
    (layers, facets, concatenations). For tests and checks: it switches altair's global data
    transformer for the call, so it is not for a server's concurrent reruns."""
    with alt.data_transformers.enable("default", max_rows=None):  # count them, do not refuse them
        spec = chart.to_dict()
    return _rows(spec)


def _rows(node) -> int:
    if isinstance(node, list):
        return sum(_rows(v) for v in node)
    if not isinstance(node, dict):
        return 0
    n = sum(len(v) for v in node["datasets"].values()) if isinstance(node.get("datasets"), dict) else 0
    data = node.get("data")
    if isinstance(data, dict) and isinstance(data.get("values"), list):
        n += len(data["values"])
    return n + sum(_rows(v) for k, v in node.items() if k not in ("datasets", "data"))


def _top(frame: pd.DataFrame, col: str, weight: pd.Series, k: int, what: str) -> tuple[pd.DataFrame, Optional[str]]:
    """Rows of the k groups of `col` with the largest weight, and a note when some were left out."""
    totals = weight.groupby(frame[col]).sum()
    if len(totals) <= k:
        return frame, None
    keep = totals.sort_values(ascending=False, kind="stable").index[:k]
    return frame[frame[col].isin(keep)], f"showing the {k} largest of {len(totals)} {what}; the Numbers table has them all"


def boxplots(df: pd.DataFrame, by: Optional[str] = None) -> tuple:
    # Drawn from precomputed quartiles: Vega-Lite's boxplot would need every score in the browser.
    stats = d.box_stats(df, by=by)
    shown, note = _top(stats, by, stats["photos"], TOP_GROUPS["box"], f"{by.replace('_', ' ')} groups") if by else (stats, None)
    # Boxes are placed on a numeric x computed here (dimension i at i, groups side by side): with an
    # xOffset band Vega-Lite centres rules and band-relative bars on the outer band, off their box.
    dims = list(d.DIMENSIONS)
    pos = shown["dimension"].map({k: i for i, k in enumerate(dims)}).astype(float)
    half = 0.25
    if by:
        groups = sorted(shown[by].unique())
        slot = 0.8 / len(groups)
        pos = pos + (shown[by].map({g: i for i, g in enumerate(groups)}) - (len(groups) - 1) / 2) * slot
        half = slot * 0.35
    shown = shown.assign(_pos=pos, _lo=pos - half, _hi=pos + half)
    x = alt.X("_pos:Q", title=None, scale=alt.Scale(domain=[-0.5, len(dims) - 0.5], nice=False, zero=False),
              axis=alt.Axis(values=list(range(len(dims))), labelExpr=f"{dims!r}[datum.value]", grid=False, ticks=False))
    y = alt.Y("min:Q", title="score", scale=alt.Scale(domain=[1, 5]), axis=alt.Axis(values=[1, 2, 3, 4, 5], format="d"))
    base = alt.Chart(shown).encode(tooltip=[*([by] if by else []), "dimension", "photos", "min", "q1", "median", "q3", "max"])
    fill = alt.Color(f"{by}:N", title=by.replace("_", " ")) if by else alt.value("#4c78a8")
    chart = alt.layer(  # whisker min-max, box q1-q3, median line
        base.mark_rule(color="#555", strokeWidth=1.5).encode(x=x, y=y, y2="max:Q"),
        base.mark_rect().encode(x="_lo:Q", x2="_hi:Q", y=alt.Y("q1:Q", title="score"), y2="q3:Q", color=fill),
        base.mark_rule(color="white", strokeWidth=2).encode(x="_lo:Q", x2="_hi:Q", y=alt.Y("median:Q", title="score")),
    )
    return chart.properties(height=260), stats, note


def _jitter(ids: pd.Series, salt: str, spread: float = 0.32) -> pd.Series:
    """A fixed offset in [-spread, spread] per photo: the same photo sits still across reruns."""
    return ids.map(lambda i: (zlib.crc32(f"{salt}:{i}".encode()) / 0xFFFFFFFF * 2 - 1) * spread)


_SCORE_AXIS = dict(scale=alt.Scale(domain=[0.5, 5.5]), axis=alt.Axis(values=[1, 2, 3, 4, 5], format="d"))


def scatter(df: pd.DataFrame, x_dim: str, y_dim: str) -> tuple:
    rated = df[x_dim].notna() & df[y_dim].notna()
    if not rated.any():
        raise d.NotEnoughData(f"no photo has both {x_dim} and {y_dim} scores")
    if int(rated.sum()) > MAX_MARKS:
        return binned_scatter(df, x_dim, y_dim)
    data = df[rated]
    # Scores are integers 1-5: without jitter 40 photos pile onto a dozen points that look like one.
    ids = data["photo_id"] if "photo_id" in data else pd.Series(range(len(data)), index=data.index).astype(str)
    data = data.assign(sentiment=data["sentiment"].fillna("unknown"), _x=data[x_dim].astype(float) + _jitter(ids, "x"),
                       _y=data[y_dim].astype(float) + _jitter(ids, "y"))
    # A field named "image" holding a data URI is shown as a picture by Vega's tooltip.
    cols = [c for c in ["image", "filename", "caption", "concept_text", "sentiment", x_dim, y_dim, "_x", "_y"] if c in data]
    chart = alt.Chart(data[cols]).mark_circle(size=60, opacity=0.75).encode(
        x=alt.X("_x:Q", title=x_dim, **_SCORE_AXIS), y=alt.Y("_y:Q", title=y_dim, **_SCORE_AXIS),
        color=alt.Color("sentiment:N", scale=SENTIMENT_SCALE if set(data["sentiment"]) <= set(d.SENTIMENTS) else alt.Undefined),
        tooltip=[c for c in ["image", "filename", "concept_text", "caption", "sentiment", x_dim, y_dim] if c in cols],
    ).properties(height=340)
    return chart, None


def binned_scatter(df: pd.DataFrame, x_dim: str, y_dim: str) -> tuple:
    """One circle per pair of scores, its area the photos there, its colour their net sentiment:
    at most 25 marks however large the library (and clearer than thousands of jittered dots)."""
    cells = d.score_cells(df, x_dim, y_dim)
    chart = alt.Chart(cells).mark_circle(opacity=0.85, stroke="#555", strokeWidth=0.5).encode(
        x=alt.X("x:Q", title=x_dim, **_SCORE_AXIS), y=alt.Y("y:Q", title=y_dim, **_SCORE_AXIS),
        size=alt.Size("photos:Q", scale=alt.Scale(range=[15, 1500]), legend=alt.Legend(title="photos")),
        color=alt.Color("net:Q", title="net sentiment", scale=alt.Scale(domain=[-1, 0, 1], range=["#d62728", "#9e9e9e", "#2ca02c"])),
        tooltip=[alt.Tooltip("x:Q", title=x_dim), alt.Tooltip("y:Q", title=y_dim), "photos:Q", *[f"{s}:Q" for s in d.SENTIMENTS],
                 alt.Tooltip("net:Q", format="+.2f", title="net sentiment")],
    ).properties(height=340)
    table = cells.rename(columns={"x": x_dim, "y": y_dim}) if x_dim != y_dim else cells
    return chart, table, f"{int(cells['photos'].sum())} photos binned by score: circle area is the number of photos"


def correlation(df: pd.DataFrame) -> tuple:
    c = d.correlation_frame(df)
    base = alt.Chart(c).encode(x=alt.X("dim_x:N", title=None), y=alt.Y("dim_y:N", title=None))
    chart = base.mark_rect().encode(color=alt.Color("r:Q", scale=alt.Scale(domain=[-1, 1], scheme="redblue")), tooltip=["dim_x", "dim_y", alt.Tooltip("r:Q", format=".2f")]) \
        + base.mark_text().encode(text=alt.Text("r:Q", format=".2f"))
    return chart.properties(width=320, height=320), c


# Bar charts with one row per category get a fixed height per row (a Step): Streamlit fits a
# fixed `height` to the *whole* chart (axes, legend included), which left a few rows a hairline.
_ROW = alt.Step(30)


def sentiment_by(df: pd.DataFrame, by: Optional[str]) -> tuple:
    b = d.sentiment_breakdown(df, by=by)
    shown, note = _top(b, by, b["count"], TOP_GROUPS["sentiment"], f"{by.replace('_', ' ')} values") if by else (b, None)
    y = alt.Y(f"{by}:N", title=by.replace("_", " ") if by else None, axis=alt.Axis(labelLimit=200, labelOverlap=False)) if by else \
        alt.Y("sentiment:N", sort=list(d.SENTIMENTS), title=None)
    chart = alt.Chart(shown).mark_bar().encode(
        x=alt.X("share:Q", axis=alt.Axis(format="%"), title="share of photos"), y=y,
        color=alt.Color("sentiment:N", scale=SENTIMENT_SCALE, legend=alt.Legend(orient="top", title=None)),
        order=alt.Order("sentiment_order:Q"),
        tooltip=[*([by] if by else []), "sentiment", "count", alt.Tooltip("share:Q", format=".0%")],
    ).transform_calculate(sentiment_order=f"indexof({list(d.SENTIMENTS)!r}, datum.sentiment)")
    return chart.properties(height=_ROW), b, note


def topics(df: pd.DataFrame) -> tuple:
    t = d.topic_breakdown(df)
    shown, note = _top(t, "topic", t["count"], TOP_GROUPS["topics"], "topics")
    chart = alt.Chart(shown).mark_bar().encode(x=alt.X("count:Q", axis=alt.Axis(tickMinStep=1, format="d")),
                                           y=alt.Y("topic:N", sort="-x", title=None, axis=alt.Axis(labelOverlap=False, labelLimit=200)),
                                           tooltip=["topic", "count", alt.Tooltip("share:Q", format=".0%")])
    return chart.properties(height=alt.Step(26)), t, note


def timeline(df: pd.DataFrame) -> tuple:
    t = d.over_time(df)
    if len(t) > MAX_MARKS:  # EXIF dates over centuries (or broken clocks): count per year instead
        t = d.over_time(df, freq="Y")
    chart = alt.Chart(t).mark_bar().encode(x=alt.X("period:T", title=None), y="count:Q",
                                           color=alt.Color("sentiment:N", scale=SENTIMENT_SCALE), tooltip=["period:T", "sentiment", "count"])
    return chart.properties(height=200), t


def methods(df: pd.DataFrame, codes: Optional[dict] = None) -> tuple:
    codes = codes or d.method_codes(df)
    agree = d.method_agreement(df, codes)
    frames = []
    for name, col in [("caption only", "sentiment_caption"), ("image only", "sentiment_image")]:
        try:
            frames.append(d.confusion_frame(df, col, "sentiment", codes).assign(pair=f"{name} vs combined"))
        except d.NotEnoughData:
            continue
    chart = None
    if frames:
        cm = pd.concat(frames)
        base = alt.Chart(cm).encode(x=alt.X("b:N", sort=list(d.SENTIMENTS), title="combined", axis=alt.Axis(labelAngle=0)),
                                    y=alt.Y("a:N", sort=list(d.SENTIMENTS), title="single method"))
        chart = (base.mark_rect().encode(color=alt.Color("count:Q", scale=alt.Scale(scheme="blues"))) + base.mark_text().encode(text="count:Q")) \
            .properties(width=200, height=180).facet(column=alt.Column("pair:N", title=None, header=alt.Header(labelFontSize=13, labelLimit=0)),
                                                     spacing=60)
    return chart, agree


def truth(df: pd.DataFrame, codes: Optional[dict] = None) -> tuple:
    t = d.truth_metrics(df, codes)
    long = t.melt(id_vars=["method", "photos"], value_vars=["accuracy", "macro_f1"], var_name="metric")
    chart = alt.Chart(long).mark_bar().encode(x=alt.X("value:Q", scale=alt.Scale(domain=[0, 1])), y=alt.Y("method:N", sort=list(d.METHODS)),
                                              color="metric:N", yOffset="metric:N", tooltip=["method", "metric", alt.Tooltip("value:Q", format=".3f"), "photos"])
    return chart.properties(height=150), t


def thumb_data_uri(path: Optional[str], size: int = 64) -> Optional[str]:
    """A small inline JPEG for hover previews (no file server needed)."""
    if not path or not Path(path).exists():
        return None
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        im.thumbnail((size, size))
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def embedding_map(frame: pd.DataFrame, colour_by: str, method: str, select: bool = False) -> alt.Chart:
    """One point per photo; a frame over MAX_MARKS is drawn from d.sample_rows (the page samples
    before projecting, so it can say how many it shows: this is the backstop)."""
    frame = d.sample_rows(frame, colour_by, MAX_MARKS)
    tooltip = [c for c in ["image", "filename", "class_name", "caption", "sentiment", "topics", "concept_text"] if c in frame]
    kind = "Q" if colour_by in d.DIMENSIONS else "N"
    colour = alt.Color(f"{colour_by}:{kind}", scale=SENTIMENT_SCALE) if colour_by == "sentiment" else alt.Color(f"{colour_by}:{kind}")
    chart = alt.Chart(frame).mark_circle(size=80, opacity=0.8).encode(
        x=alt.X("x:Q", title=f"{method} 1", axis=alt.Axis(labels=False)), y=alt.Y("y:Q", title=f"{method} 2", axis=alt.Axis(labels=False)),
        color=colour, tooltip=tooltip).properties(height=420)
    if select:
        chart = chart.add_params(alt.selection_interval(name="brush"))
    return chart


def build_sections(df: pd.DataFrame, *, box_by: Optional[str] = None, x_dim: str = "Safety", y_dim: str = "Privacy",
                   sentiment_by_field: Optional[str] = "class_name") -> list[Section]:
    """Every dashboard block for a (filtered) frame, in page order."""
    if df.empty:
        return [Section("empty", "No photos", message="no photo matches: the library is empty or the filters exclude everything")]
    codes = d.method_codes(df)  # shared by the two method charts
    return [
        _safe("hist", "Distribution of each dimension", lambda: histograms(df)),
        _safe("box", "Box plots of the six dimensions", lambda: boxplots(df, by=box_by)),
        _safe("scatter", f"{x_dim} vs {y_dim}", lambda: scatter(df, x_dim, y_dim)),
        _safe("corr", "Correlation between dimensions", lambda: correlation(df)),
        _safe("sentiment", "Sentiment" + (f" by {sentiment_by_field}" if sentiment_by_field else ""), lambda: sentiment_by(df, sentiment_by_field)),
        _safe("topics", "Topics", lambda: topics(df)),
        _safe("time", "Sentiment over time", lambda: timeline(df)),
        _safe("methods", "Caption-only vs image-only vs combined", lambda: methods(df, codes)),
        _safe("truth", "Against ground truth", lambda: truth(df, codes)),
    ]


def to_svg(chart: alt.TopLevelMixin) -> str:
    """Vector export of one chart (vl-convert, offline)."""
    import vl_convert as vlc

    return vlc.vegalite_to_svg(chart.to_dict())


def report_html(sections: list[Section], title: str = "PhotoLore report") -> str:
    """One self-contained HTML file (Vega libraries inlined, works offline) with every chart."""
    blocks = []
    for s in sections:
        if s.chart is not None:
            title = alt.TitleParams(s.title, subtitle=s.note) if s.note else s.title
            blocks.append(s.chart.properties(title=title) if not isinstance(s.chart, (alt.FacetChart, alt.LayerChart)) else
                          alt.vconcat(s.chart, title=title))
        else:
            blocks.append(alt.Chart(pd.DataFrame({"t": [s.message]})).mark_text(align="left", fontSize=13).encode(text="t:N")
                          .properties(title=s.title, width=500, height=30))
    combined = alt.vconcat(*blocks, title=title).configure_view(stroke=None)
    buf = io.StringIO()
    combined.save(buf, format="html", inline=True)
    return buf.getvalue()
