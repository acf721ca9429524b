"""The page at `/` in Debian's headless Chromium (Playwright, system browser): a live count."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from api.intervals import zone
from config import Settings
from events.schema import parse_instant
from scripts.harness import free_port
from scripts.stack import apt_install
from tests.integration.projection import running_projector
from tests.support.streams import api_running, produce

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium (installed with apt-get when missing, as `make test` does)."""
    executable = apt_install("chromium", "chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page; console errors fail the test."""
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == []


def at_second(text: str) -> int:
    return parse_instant(text)[1]


def _count_is(page: Page, value: int, timeout_s: float) -> None:
    page.wait_for_function(
        "n => document.getElementById('count').textContent === String(n)",
        arg=value,
        timeout=timeout_s * 1000,
    )


def _open(page: Page, url: str) -> None:
    """Load the page and wait until its first snapshot list has arrived."""
    page.goto(url)
    page.wait_for_function(
        "() => document.getElementById('snapshots-status').textContent.endsWith(' in all.')",
        timeout=15_000,
    )


def _save_snapshot(page: Page) -> None:
    """Press "Save snapshot" and wait for the page to say how it went."""
    page.evaluate("() => { document.getElementById('snapshots-status').textContent = ''; }")
    page.get_by_role("button", name="Save snapshot").click()
    page.wait_for_function(
        "starts => starts.some(start =>"
        " document.getElementById('snapshots-status').textContent.startsWith(start))",
        arg=["Snapshot saved", "Not saved", "Could not save"],
        timeout=15_000,
    )


def _listed(page: Page, org: str) -> None:
    """Wait until the snapshot list shows a snapshot of `org`."""
    page.wait_for_function(
        "org => [...document.querySelectorAll('#snapshots td')].some(td => td.textContent === org)",
        arg=org,
        timeout=15_000,
    )


def test_page_shows_the_live_count(settings: Settings, topics: str, page: Page) -> None:
    settings = replace(settings, port=free_port())
    org = "org-browser-7"
    now = int(time.time())
    day = time.strftime("%Y-%m-%d", time.gmtime(now))
    with api_running(settings), running_projector(settings):
        page.goto(f"http://127.0.0.1:{settings.port}/")
        assert page.title() == "Period record counts"
        page.get_by_label("Organisation id").fill(org)
        page.get_by_label("Start (UTC)").fill(f"{day}T00:00:00")
        page.get_by_label("End (UTC)").fill(f"{day}T23:59:59")
        page.get_by_role("button", name="Watch live").click()
        _count_is(page, 0, 15)

        produce(settings, org, [now] * 7)
        _count_is(page, 7, 60)
        assert "Not complete" in (page.text_content("#complete") or "")

        # A snapshot saved from the page shows up in the list.
        _save_snapshot(page)
        _listed(page, org)


def test_page_saves_a_snapshot_with_the_token_it_keeps(settings: Settings, page: Page) -> None:
    """With API_TOKEN set: refused (a plain 401 message) without the token, saved with it."""
    token = "page-token-42"
    settings = replace(settings, port=free_port(), api_token=token)
    org = "org-browser-token"
    sent: list[str | None] = []
    page.on(
        "request",
        lambda request: (
            sent.append(request.headers.get("authorization")) if request.method == "POST" else None
        ),
    )
    with api_running(settings):
        _open(page, f"http://127.0.0.1:{settings.port}/")
        page.get_by_label("Organisation id").fill(org)
        status = page.locator("#snapshots-status")

        _save_snapshot(page)
        assert status.text_content() == (
            "Not saved: this server needs an API token; enter it under Access."
        )
        assert sent == [None]

        page.get_by_label("API token").fill(token)
        _save_snapshot(page)
        assert status.text_content() == "Snapshot saved: 0 record(s). 1 snapshot(s) in all."
        _listed(page, org)
        assert sent == [None, f"Bearer {token}"]

        # Kept for the tab (sessionStorage), not beyond it.
        _open(page, page.url)
        assert page.get_by_label("API token").input_value() == token
        assert page.evaluate("() => localStorage.length") == 0
        other_tab = page.context.new_page()
        _open(other_tab, page.url)
        assert other_tab.get_by_label("API token").input_value() == ""
        other_tab.close()
        page.get_by_label("API token").fill("wrong")
        _save_snapshot(page)
        assert status.text_content() == "Not saved: the server did not accept this API token."


def _bars(page: Page) -> list[dict[str, str]]:
    return page.eval_on_selector_all(
        "#chart rect",
        "rects => rects.map(r => ({start: r.dataset.start, end: r.dataset.end, "
        "count: r.dataset.count, now: r.parentNode.classList.contains('now')}))",
    )


def test_chart_draws_the_series_and_the_current_bar_rises(
    settings: Settings, topics: str, page: Page
) -> None:
    settings = replace(settings, port=free_port())
    org = "org-chart-5"
    now = int(time.time())
    if now % 86_400 > 86_400 - 300:  # too close to midnight: the test's day would end
        time.sleep(86_400 - now % 86_400 + 1)
        now = int(time.time())
    day = now - now % 86_400
    # A known data set: (h * 5) % 9 events at ten past every UTC hour, and two at now.
    seconds = [day + h * 3600 + 600 for h in range(24) for _ in range((h * 5) % 9)]
    seconds += [now, now]
    kathmandu = zone("Asia/Kathmandu")

    def hour_of(second: int) -> tuple[object, int]:
        local = datetime.fromtimestamp(second, UTC).astimezone(kathmandu)
        return local.date(), local.hour

    with api_running(settings), running_projector(settings):
        produce(settings, org, seconds)
        page.goto(f"http://127.0.0.1:{settings.port}/")
        page.get_by_label("Organisation id").fill(org)
        stamp = time.strftime("%Y-%m-%d", time.gmtime(day))
        page.get_by_label("Start (UTC)").fill(f"{stamp}T00:00:00")
        page.get_by_label("End (UTC)").fill(f"{stamp}T23:59:59")
        page.get_by_label("Interval", exact=True).select_option("hour")
        page.get_by_label("Time zone").fill("Asia/Kathmandu")
        page.get_by_role("button", name="Watch live").click()
        total = len(seconds)
        page.wait_for_function(
            "n => (document.getElementById('chart-total').textContent || '')"
            ".startsWith(`Total: ${n} record`)",
            arg=total,
            timeout=60_000,
        )
        bars = _bars(page)
        # A UTC day at +05:45 meets 25 local hours: 05:45-05:59, 23 whole ones, 05:00-05:44.
        assert len(bars) == 25
        assert bars[0]["start"] == f"{stamp}T05:45:00+05:45"
        expected = Counter(hour_of(s) for s in seconds)
        drawn = {hour_of(at_second(bar["start"])): int(bar["count"]) for bar in bars}
        assert {k: v for k, v in drawn.items() if v} == dict(expected)
        for bar in bars:
            lo, hi = at_second(bar["start"]), at_second(bar["end"])
            assert int(bar["count"]) == sum(1 for s in seconds if lo <= s <= hi)
        current = [bar for bar in bars if bar["now"]]
        assert len(current) == 1 and hour_of(now) == hour_of(at_second(current[0]["start"]))
        before = int(current[0]["count"])
        labels = page.eval_on_selector_all("#chart .x-label", "ts => ts.map(t => t.textContent)")
        # Every third hour is labelled, in Kathmandu time, with the date where the day starts.
        local_day = datetime.fromtimestamp(day, UTC).astimezone(kathmandu)
        assert labels[:3] == ["05:45", f"{local_day.day} {local_day:%b}", "08:00"]

        produce(settings, org, [int(time.time())])
        page.wait_for_function(
            "n => [...document.querySelectorAll('#chart .bar.now rect')]"
            ".some(r => Number(r.dataset.count) === n)",
            arg=before + 1,
            timeout=60_000,
        )
        assert len(_bars(page)) == 25
        shot = os.environ.get("PRC_SCREENSHOT")
        if shot:  # docs/page-chart.png: PRC_SCREENSHOT=$PWD/docs/page-chart.png
            page.set_viewport_size({"width": 900, "height": 1100})
            page.screenshot(path=shot, full_page=True)
