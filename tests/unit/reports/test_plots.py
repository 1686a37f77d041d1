"""The report's plot functions on small hand-made inputs: what is drawn (bars, lines, lanes, boxes), the colours
that encode responses, and that every figure saves as a PNG."""

from __future__ import annotations

import struct

import pytest
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

from abscopal.reports import style
from abscopal.reports.plots import (
    ConsortFlow,
    KMCurve,
    QolSeries,
    RateBar,
    SpiderSeries,
    SwimmerLane,
    WaterfallBar,
    ae_heatmap,
    consort_plot,
    km_plot,
    qol_plot,
    response_rate_plot,
    risk_times,
    spider_plot,
    swimmer_plot,
    waterfall_plot,
)
from abscopal.reports.style import figure_png, new_figure, response_colour
from abscopal.stats import kaplan_meier, proportion_ci

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def bars_of(fig):  # the bar rectangles of the first axes (not the background patch)
    ax = fig.axes[0]
    return [p for p in ax.patches if isinstance(p, Rectangle)]


# --- style


@pytest.mark.parametrize(
    ("code", "key"),
    [("iCR", "CR"), ("CR", "CR"), ("iPR", "PR"), ("iSD", "SD"), ("iNN", "NonCR/NonPD"), ("iUPD", "UPD"),
     ("iCPD", "PD"), ("PD", "PD"), ("NE", "NE"), ("", "NE"), ("nonsense", "NE")],
)  # fmt: skip
def test_recist_and_irecist_codes_of_the_same_rank_share_a_colour(code: str, key: str) -> None:
    assert response_colour(code) == style.RESPONSE_COLOURS[key]


def test_response_colours_are_distinct_for_cr_pr_sd_pd() -> None:
    colours = {style.RESPONSE_COLOURS[k] for k in ("CR", "PR", "SD", "PD", "NE")}
    assert len(colours) == 5


# --- Kaplan-Meier


def km_example():
    # 6 patients: events at 2, 4, 6; censored at 3, 5, 8 (hand-made)
    return kaplan_meier([2, 3, 4, 5, 6, 8], [1, 0, 1, 0, 1, 0])


def test_km_plot_draws_one_step_curve_per_result_with_censor_marks() -> None:
    fig = km_plot([KMCurve("A", km_example()), KMCurve("B", kaplan_meier([1, 2, 9], [1, 1, 0]))], show_ci=False)
    ax = fig.axes[0]
    censor = [line for line in ax.lines if line.get_gid() == "censor"]
    assert len(censor) == 2
    assert list(censor[0].get_xdata()) == [3.0, 5.0, 8.0]  # the censoring times of curve A
    steps = [line for line in ax.lines if line.get_drawstyle() == "steps-post"]
    assert len(steps) == 2


def test_km_plot_prints_the_number_at_risk_under_the_axis() -> None:
    fig = km_plot([KMCurve("PFS", km_example())], risk_step=2.0)
    at_risk = [t.get_text() for t in fig.axes[0].texts if t.get_gid() == "at_risk"]
    # times 0, 2, 4, 6, 8: observed time >= t -> 6, 6, 4, 2, 1 (hand-counted)
    assert at_risk == ["6", "6", "4", "2", "1"]


def test_km_plot_draws_the_median_line_when_the_median_is_reached() -> None:
    fig = km_plot([KMCurve("PFS", km_example())])
    median = [line for line in fig.axes[0].lines if line.get_gid() == "median"]
    # S(t): 5/6 after 2, 5/6*3/4 = 0.625 after 4, 0.625*1/2 = 0.3125 after 6 -> median 6
    assert len(median) == 1 and list(median[0].get_xdata()) == [0, 6.0, 6.0]


def test_km_plot_divides_times_by_the_time_scale() -> None:
    fig = km_plot([KMCurve("PFS", km_example())], time_scale=2.0, show_ci=False)
    censor = next(line for line in fig.axes[0].lines if line.get_gid() == "censor")
    assert list(censor.get_xdata()) == [1.5, 2.5, 4.0]


def test_risk_times_run_from_zero_by_the_step_up_to_the_horizon() -> None:
    assert risk_times(7.9, 2.0) == [0.0, 2.0, 4.0, 6.0]
    assert risk_times(8.0, 2.0) == [0.0, 2.0, 4.0, 6.0, 8.0]


# --- waterfall


def waterfall_example() -> list[WaterfallBar]:
    return [
        WaterfallBar("S1", -45.0, "iPR"),
        WaterfallBar("S2", 25.0, "iCPD"),
        WaterfallBar("S3", -100.0, "iCR"),
        WaterfallBar("S4", 5.0, "iSD"),
    ]


def test_waterfall_draws_one_bar_per_patient_sorted_from_increase_to_decrease() -> None:
    fig = waterfall_plot(waterfall_example())
    heights = [b.get_height() for b in bars_of(fig)]
    assert heights == [25.0, 5.0, -45.0, -100.0]


def test_waterfall_bars_are_coloured_by_best_overall_response() -> None:
    fig = waterfall_plot(waterfall_example())
    colours = [to_hex(b.get_facecolor()) for b in bars_of(fig)]
    expected = [style.RESPONSE_COLOURS[k] for k in ("PD", "SD", "PR", "CR")]
    assert colours == expected


def test_waterfall_has_reference_lines_at_minus_30_and_plus_20_percent() -> None:
    fig = waterfall_plot(waterfall_example())
    refs = {line.get_gid(): line.get_ydata()[0] for line in fig.axes[0].lines if line.get_gid()}
    assert refs == {"ref+20": 20, "ref-30": -30}


def test_waterfall_with_many_patients_draws_one_collection_in_the_same_order() -> None:
    from abscopal.reports.plots import WATERFALL_MAX_PATCHES

    n = WATERFALL_MAX_PATCHES + 1
    fig = waterfall_plot([WaterfallBar(f"S{i:03d}", -float(i % 90), "iPR" if i % 90 > 30 else "iSD") for i in range(n)])
    (collection,) = [c for c in fig.axes[0].collections if c.get_gid() == "bars"]
    paths = collection.get_paths()
    assert len(paths) == n
    tops = [p.vertices[1, 1] for p in paths]
    assert tops == sorted(tops, reverse=True)  # sorted from increase to decrease


def test_waterfall_without_patients_says_so() -> None:
    fig = waterfall_plot([])
    assert "No patient" in fig.axes[0].texts[0].get_text()


# --- spider


def test_spider_draws_one_line_per_patient_starting_at_zero() -> None:
    fig = spider_plot(
        [SpiderSeries("S1", [6, 12], [-35, -50], "iPR"), SpiderSeries("S2", [6], [30], "iCPD")],
    )
    lines = [line for line in fig.axes[0].lines if str(line.get_gid()).startswith("patient:")]
    assert len(lines) == 2
    assert list(lines[0].get_xdata()) == [0.0, 6, 12] and list(lines[0].get_ydata()) == [0.0, -35, -50]
    assert to_hex(lines[1].get_color()) == style.RESPONSE_COLOURS["PD"]


def test_spider_with_many_patients_draws_one_collection_of_lines() -> None:
    from abscopal.reports.plots import SPIDER_MAX_LINES

    n = SPIDER_MAX_LINES + 1
    fig = spider_plot([SpiderSeries(f"S{i}", [6], [-i / 2], "iSD") for i in range(n)])
    (collection,) = [c for c in fig.axes[0].collections if c.get_gid() == "patients"]
    assert len(collection.get_segments()) == n


# --- swimmer


def test_swimmer_draws_one_lane_per_patient_longest_at_the_top() -> None:
    lanes = [
        SwimmerLane("S1", 20.0, rt=(0.0, 5.0), io=[0, 3, 6], best_response="iPR"),
        SwimmerLane("S2", 40.0, rt=(0.0, 6.0), io=[0, 3], death=40.0, best_response="iCPD"),
        SwimmerLane("S3", 10.0, ongoing=True, best_response="iSD"),
    ]
    fig = swimmer_plot(lanes)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["S3", "S1", "S2"]
    lane_bars = [b for b in bars_of(fig) if b.get_gid() != "rt"]
    assert sorted(b.get_width() for b in lane_bars) == [10.0, 20.0, 40.0]
    assert len([b for b in bars_of(fig) if b.get_gid() == "rt"]) == 2


def test_swimmer_marks_cycles_responses_death_and_ongoing_follow_up() -> None:
    lane = SwimmerLane(
        "S1", 30.0, io=[0, 3, 6, 9], responses=[(6.0, "iSD"), (12.0, "iPR")], progression=24.0, death=30.0
    )
    fig = swimmer_plot([lane, SwimmerLane("S2", 12.0, ongoing=True)])
    ax = fig.axes[0]
    markers = [line.get_marker() for line in ax.lines]
    assert markers.count("|") == 1 and len(ax.lines[0].get_xdata()) == 4  # the 4 cycles in one artist
    assert markers.count("^") == 1  # PR marked; SD is not a response marker
    assert markers.count("D") == 1 and markers.count("X") == 1
    arrows = [t for t in ax.texts if getattr(t, "arrow_patch", None) is not None]
    assert len(arrows) == 1


# --- response rates


def test_response_rate_plot_draws_rates_with_their_confidence_intervals() -> None:
    # 3/10: Clopper-Pearson 95% CI 0.0667 to 0.6525 (R binom.test(3, 10))
    ci = proportion_ci(3, 10)
    fig = response_rate_plot([RateBar("Conventional", ci), RateBar("Observation", proportion_ci(1, 8))])
    bars = bars_of(fig)
    assert [round(b.get_height(), 6) for b in bars] == [30.0, 12.5]
    errorbar_segments = [c for c in fig.axes[0].collections if c.get_segments()]
    (low, high) = errorbar_segments[0].get_segments()[0][:, 1]
    assert low == pytest.approx(6.67, abs=0.01) and high == pytest.approx(65.25, abs=0.01)
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert labels == ["3/10", "1/8"]


def test_response_rate_plot_marks_a_role_without_patients_as_not_evaluable() -> None:
    fig = response_rate_plot([RateBar("Observation", None)])
    assert bars_of(fig) == [] and fig.axes[0].texts[0].get_text() == "not evaluable"


# --- adverse-event heat map


def test_ae_heatmap_has_one_row_per_term_and_five_grade_columns() -> None:
    fig = ae_heatmap(["Fatigue", "Pneumonitis"], [[3, 1, 0, 0, 0], [0, 2, 1, 0, 0]], population=10)
    ax = fig.axes[0]
    image = ax.images[0]
    assert image.get_array().shape == (2, 5)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Fatigue", "Pneumonitis"]
    assert sorted(t.get_text() for t in ax.texts) == ["1", "1", "2", "3"]  # zero cells stay blank


def test_ae_heatmap_refuses_a_matrix_that_is_not_terms_by_five_grades() -> None:
    with pytest.raises(ValueError, match="2 x 5"):
        ae_heatmap(["A", "B"], [[1, 2, 3]])


# --- QoL


def test_qol_plot_draws_one_line_per_scale_with_error_bars() -> None:
    series = [
        QolSeries("QL2", "Global health", [0, 6], [60, 55], [55, 50], [65, 60], [10, 8]),
        QolSeries("FA", "Fatigue", [0, 6], [30, 35], [25, 30], [35, 40], [10, 8]),
    ]
    fig = qol_plot(series)
    ax = fig.axes[0]
    assert len(ax.containers) == 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Global health", "Fatigue"]


# --- CONSORT


def test_consort_draws_the_boxes_and_arrows_of_the_flow() -> None:
    flow = ConsortFlow(100, 20, [("EX3 brain metastases", 15), ("IN3 ECOG", 5)], 80, 78, 2, 78)
    fig = consort_plot(flow)
    ax = fig.axes[0]
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    # assessed, excluded, enrolled, treated, not treated, analysed
    assert len(boxes) == 6 and len(arrows) == 5
    text = "\n".join(t.get_text() for t in ax.texts)
    for expected in ("(n=100)", "Excluded (n=20)", "EX3 brain metastases: 15", "Enrolled\n(n=80)", "(n=78)"):
        assert expected in text


def test_consort_adds_a_box_for_patients_left_out_of_the_analysis() -> None:
    flow = ConsortFlow(10, 2, [], 8, 8, 0, 7, not_analysed=1, discontinued=[("no baseline scan", 1)])
    boxes = [p for p in consort_plot(flow).axes[0].patches if isinstance(p, FancyBboxPatch)]
    assert len(boxes) == 7


# --- every figure saves


@pytest.mark.parametrize(
    "make",
    [
        lambda: km_plot([KMCurve("PFS", km_example())]),
        lambda: waterfall_plot(waterfall_example()),
        lambda: spider_plot([SpiderSeries("S1", [6], [-40], "iPR")]),
        lambda: swimmer_plot([SwimmerLane("S1", 12.0, rt=(0, 5), io=[0, 3])]),
        lambda: response_rate_plot([RateBar("Any", proportion_ci(2, 5))]),
        lambda: ae_heatmap(["Fatigue"], [[1, 0, 0, 0, 0]]),
        lambda: qol_plot([QolSeries("QL2", "Global health", [0], [50], [40], [60])]),
        lambda: consort_plot(ConsortFlow(5, 1, [("IN1", 1)], 4, 4, 0, 4)),
    ],
    ids=["km", "waterfall", "spider", "swimmer", "rates", "heatmap", "qol", "consort"],
)
def test_every_plot_saves_as_a_png(make) -> None:
    width, height = png_size(figure_png(make()))
    assert width > 200 and height > 100


def test_a_plot_draws_into_the_axes_it_is_given() -> None:
    fig = new_figure(8, 3)
    left, right = fig.subplots(1, 2)
    assert waterfall_plot(waterfall_example(), ax=right) is fig
    assert len(bars_of_axes(right)) == 4 and len(bars_of_axes(left)) == 0


def bars_of_axes(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def test_km_plot_with_ci_fills_the_pointwise_band() -> None:
    fig = km_plot([KMCurve("PFS", km_example())], show_ci=True)
    assert any(isinstance(c, PolyCollection) for c in fig.axes[0].collections)
