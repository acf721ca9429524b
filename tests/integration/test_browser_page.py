"""The page at `/` in Debian's headless Chromium (Playwright, system browser): a live count."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from events.settings import Settings
from scripts.harness import free_port
from scripts.stack import apt_install
from tests.integration.projection import running_projector
from tests.integration.test_stream_support import api_running, produce

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
