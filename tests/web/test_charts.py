"""charts: inline SVG from lists of numbers (pure)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tys_server.web import charts

SVG = "{http://www.w3.org/2000/svg}"


def parsed(markup: str) -> ET.Element:
    """The chart as XML: it must be well-formed to be inlined in the page."""
    return ET.fromstring(markup)


@pytest.mark.parametrize(("value", "ceiling"), [
    (0, 1), (-3, 1), (float("nan"), 1), (0.3, 0.5), (1, 1), (1.01, 2), (2.2, 2.5),
    (3, 5), (7, 10), (10, 10), (11, 20), (240, 250), (999, 1000), (1234, 2000),
])
def test_nice_ceiling_rounds_up_to_a_readable_axis(value: float, ceiling: float) -> None:
    assert charts.nice_ceiling(value) == pytest.approx(ceiling)


@pytest.mark.parametrize(("value", "text"), [
    (0, "0"), (7, "7"), (12.5, "12.5"), (950, "950"), (12_000, "12k"), (1_200_000, "1.2M"),
    (2_000_000, "2M"),
])
def test_axis_numbers_stay_short(value: float, text: str) -> None:
    assert charts.format_number(value) == text


def test_long_labels_keep_their_end() -> None:
    text = "Venue>Building North>Floor 2>Main Hall West"
    short = charts.shorten(text, 20)
    assert len(short) == 20
    assert short.endswith("Main Hall West")
    assert charts.shorten("Hall", 20) == "Hall"


def test_line_chart_has_one_point_per_value_scaled_to_the_axis() -> None:
    svg = parsed(charts.line_chart([0, 5, 10, 4], title="t", width=236, height=138))
    (line,) = svg.iter(f"{SVG}polyline")
    points = [tuple(map(float, p.split(","))) for p in line.get("points", "").split()]
    assert len(points) == 4
    assert [x for x, _ in points] == pytest.approx([44, 104, 164, 224])
    # plot from y=12 (top, value 10) to y=112 (bottom, value 0)
    assert [y for _, y in points] == pytest.approx([112, 62, 12, 72])
    axis = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "axis"]
    assert axis == ["0", "5", "10"]


def test_line_chart_of_one_value_is_a_point_in_the_middle() -> None:
    svg = parsed(charts.line_chart([3], title="t", width=236))
    (line,) = svg.iter(f"{SVG}polyline")
    assert line.get("points", "").startswith("134.0,")


def test_empty_charts_say_so_instead_of_drawing() -> None:
    for markup in (charts.line_chart([], title="t"), charts.bar_chart([], title="t")):
        svg = parsed(markup)
        assert not list(svg.iter(f"{SVG}polyline"))
        assert not list(svg.iter(f"{SVG}rect"))
        assert [t.text for t in svg.iter(f"{SVG}text")] == ["No data yet"]


def test_bar_chart_draws_one_bar_per_item_proportionally() -> None:
    items = [("Keynote", 40.0), ("Expo", 20.0), ("Coffee", 5.0)]
    svg = parsed(charts.bar_chart(items, title="zones", width=600))
    bars = [r for r in svg.iter(f"{SVG}rect") if r.get("class") == "bar"]
    assert [b.get("data-value") for b in bars] == ["40", "20", "5"]
    widths = [float(b.get("width", "0")) for b in bars]
    assert widths == pytest.approx([344 * 40 / 50, 344 * 20 / 50, 344 * 5 / 50])
    labels = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "label"]
    assert labels == ["Keynote", "Expo", "Coffee"]


def test_every_text_is_escaped() -> None:
    hostile = '<script>alert("x")</script> & co'
    for markup in (charts.bar_chart([(hostile, 1.0)], title=hostile),
                   charts.line_chart([1.0, 2.0], title=hostile, x_labels=[hostile, "b"])):
        assert "<script>" not in markup
        svg = parsed(markup)  # still well-formed XML
        assert svg.find(f"{SVG}title") is not None
        assert svg.find(f"{SVG}title").text == hostile  # type: ignore[union-attr]
