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
        page.get_by_role("button", name="Save snapshot").click()
        page.wait_for_function(
            "org => [...document.querySelectorAll('#snapshots td')]"
            ".some(td => td.textContent === org)",
            arg=org,
            timeout=15_000,
        )


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
        page.goto(f"http://127.0.0.1:{settings.port}/")
        page.get_by_label("Organisation id").fill(org)
        status = page.locator("#snapshots-status")

        page.get_by_role("button", name="Save snapshot").click()
        page.wait_for_function(
            "() => document.getElementById('snapshots-status').textContent.startsWith('Not saved')",
            timeout=15_000,
        )
        assert status.text_content() == (
            "Not saved: this server needs an API token; enter it under Access."
        )
        assert sent == [None]

        page.get_by_label("API token").fill(token)
        page.get_by_role("button", name="Save snapshot").click()
        page.wait_for_function(
            "org => [...document.querySelectorAll('#snapshots td')]"
            ".some(td => td.textContent === org)",
            arg=org,
            timeout=15_000,
        )
        assert (status.text_content() or "").endswith("snapshot(s) in all.")
        assert sent == [None, f"Bearer {token}"]

        # Kept for the tab (sessionStorage), not beyond it.
        page.reload()
        assert page.get_by_label("API token").input_value() == token
        assert page.evaluate("() => localStorage.length") == 0
        page.get_by_label("API token").fill("wrong")
        page.get_by_role("button", name="Save snapshot").click()
        page.wait_for_function(
            "() => document.getElementById('snapshots-status').textContent.startsWith('Not saved')",
            timeout=15_000,
        )
        assert status.text_content() == "Not saved: the server did not accept this API token."
