"""The page's layout in Chromium at phone, narrow and desktop widths: charts fit
their boxes, and nothing (the Drop connection buttons included) spills out."""

import pytest

from tests.support.browser import open_with_login_link, wait_state
from tests.support.wsclient import TOKEN

# For each chart: the figure's content box (clientWidth less its padding) and
# the width uPlot drew (its root element and its canvas, in CSS pixels).
CHART_BOXES = """() => [...document.querySelectorAll('#charts figure.chart')].map((f) => {
  const cs = getComputedStyle(f);
  const content = f.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
  const plot = f.querySelector('.uplot');
  const canvas = f.querySelector('canvas');
  return {chart: f.dataset.chart, content, plot: plot.getBoundingClientRect().width,
          canvas: canvas.getBoundingClientRect().width};
})"""

# Elements whose box reaches past the section they sit in or past the viewport,
# and rows whose content is wider than the row.
SPILLS = """(selectors) => selectors.flatMap((sel) => [...document.querySelectorAll(sel)].map((el) => {
  const box = el.getBoundingClientRect();
  const section = el.closest('section, .panel').getBoundingClientRect();
  if (box.right > section.right + 0.5 || box.left < section.left - 0.5 || box.right > innerWidth + 0.5)
    return `${sel}: ${box.left}-${box.right} outside ${section.left}-${section.right} (viewport ${innerWidth})`;
  if (el.scrollWidth > el.clientWidth + 1) return `${sel}: content ${el.scrollWidth} px in ${el.clientWidth} px`;
  return null;
})).filter(Boolean)"""

ELEMENTS = ["#drop-sse", "#drop-ws", ".console-head", ".console-head h3", ".facts-head", "#ws-pill"]


@pytest.mark.parametrize("width", [1440, 1000, 390, 320])
def test_charts_fit_their_figures_and_nothing_spills_out(start_server, browser, page_errors, width):
    server = start_server({"SAMPLE_INTERVAL": "0.5"})
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = page_errors(context.new_page())
    open_with_login_link(page, f"{server.base}/?token={TOKEN}")
    wait_state(page, "sse-pill", "open")
    wait_state(page, "ws-pill", "open")
    page.wait_for_function("document.querySelectorAll('#charts figure.chart canvas').length === 5")
    page.wait_for_timeout(300)  # a resize settles in the next frame

    for box in page.evaluate(CHART_BOXES):
        # The chart fills its box: not wider (it would spill over the padding), not narrower.
        assert abs(box["plot"] - box["content"]) <= 1, box
        assert box["canvas"] <= box["content"] + 1, box

    assert page.evaluate(SPILLS, ELEMENTS) == []
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth + 1")

    # Resizing keeps the charts in their boxes.
    page.set_viewport_size({"width": max(320, width // 2), "height": 900})
    page.wait_for_timeout(500)
    for box in page.evaluate(CHART_BOXES):
        assert abs(box["plot"] - box["content"]) <= 1, box
    context.close()
    assert page_errors.errors == []
