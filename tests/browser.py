"""Opens a page in Debian's Chromium, headless, through Playwright: the console errors it
logged, what rendered, and a screenshot. Used by the report test and by `make screenshot`:

    python -m tests.browser data/exports/report.html data/report.png
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import sync_playwright

# Debian's package; Playwright's own browser download is not used.
CHROMIUM = "/usr/bin/chromium"
# No first-run work, no background connections: the page must stand on its own.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class PageVisit:
    console_errors: list[str] = field(default_factory=list)
    requests_outside: list[str] = field(default_factory=list)
    charts_rendered: int = 0
    chart_ids: list[str] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)


def chromium_path() -> str | None:
    found = Path(CHROMIUM)
    return str(found) if found.exists() else shutil.which("chromium")


def visit(page_path: Path, screenshot: Path | None = None) -> PageVisit:
    """Loads the file, waits for every Plotly chart to draw, and reads the page."""
    result = PageVisit()
    url = page_path.resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="segments-chromium-") as profile:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=chromium_path(),
                args=CHROMIUM_ARGS,
                headless=True,
                viewport={"width": 1280, "height": 900},
            )
            page = context.new_page()
            page.on(
                "console",
                lambda message: (
                    result.console_errors.append(message.text) if message.type == "error" else None
                ),
            )
            page.on("pageerror", lambda error: result.console_errors.append(str(error)))
            page.on(
                "request",
                lambda request: (
                    None
                    if request.url.startswith(("file:", "data:", "blob:", "about:"))
                    else result.requests_outside.append(request.url)
                ),
            )
            page.goto(url, wait_until="load")
            page.wait_for_function(
                "() => [...document.querySelectorAll('.plotly-graph-div')]"
                ".every(div => div.querySelector('.main-svg'))",
                timeout=30_000,
            )
            # A chart counts as rendered when Plotly drew its plot area with marks in it.
            result.chart_ids = page.eval_on_selector_all(
                ".plotly-graph-div", "divs => divs.map(div => div.id)"
            )
            result.charts_rendered = page.eval_on_selector_all(
                ".plotly-graph-div",
                "divs => divs.filter(div => div.querySelector('.main-svg .trace, .main-svg .hm'))"
                ".length",
            )
            for element in page.query_selector_all("[data-uplift]"):
                segment = element.get_attribute("data-segment") or ""
                result.attributes[f"uplift:{segment}"] = element.get_attribute("data-uplift") or ""
                result.texts[f"uplift:{segment}"] = element.inner_text()
            for element in page.query_selector_all("[data-auc]"):
                score = element.get_attribute("data-score") or ""
                result.attributes[f"auc:{score}"] = element.get_attribute("data-auc") or ""
                result.texts[f"auc:{score}"] = element.inner_text()
            result.texts["exported-total"] = page.inner_text("#exported-total")
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
            context.close()
    return result


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m tests.browser <page.html> <screenshot.png>", file=sys.stderr)
        return 2
    if chromium_path() is None:
        print("chromium not found: apt-get install chromium", file=sys.stderr)
        return 1
    page, picture = Path(argv[0]), Path(argv[1])
    if not page.exists():
        print(f"{page} does not exist: run `make run` first", file=sys.stderr)
        return 1
    seen = visit(page, picture)
    print(
        f"{picture}: {seen.charts_rendered} charts rendered, "
        f"{len(seen.console_errors)} console errors"
    )
    for error in seen.console_errors:
        print(f"  console error: {error}")
    return 1 if seen.console_errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
