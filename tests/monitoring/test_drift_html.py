"""The HTML drift report in a real browser: Debian's chromium, headless, through Playwright."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import modelyard as my
from _drift_data import CHANGED, frame

from conftest import service_missing


def test_the_html_report_opens_in_chromium_without_console_errors(tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        service_missing("chromium (Debian package)", "not on PATH; apt-get install chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    report = my.monitoring.drift_report(frame(3_000, seed=1), frame(3_000, seed=2, changed=True))
    page_file = tmp_path / "drift.html"
    report.to_html(page_file)
    screenshot = tmp_path / "drift.png"
    problems: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("requestfailed", lambda request: problems.append(request.url))
            page.goto(page_file.as_uri())
            page.screenshot(path=str(screenshot), full_page=True)
            title = page.title()
            cards = page.locator(".card").count()
            drifted = page.locator("td .drifted").all_inner_texts()
        finally:
            browser.close()
    assert problems == []
    assert title.startswith("Drift report")
    assert cards == len(report.columns)
    assert len(drifted) == len(CHANGED)
    assert screenshot.stat().st_size > 10_000  # kept with the test's files: look at it
    print(f"screenshot: {screenshot}")
