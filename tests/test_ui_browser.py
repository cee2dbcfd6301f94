"""The dashboard in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright against a
real ``ste-mcp serve --transport http`` subprocess on a seeded LanceDB data dir.

Log in with the bearer token → approve a candidate exemplar on the page → the server re-renders the
description (new version on the page) → an MCP client session sees the new text in ``tools/list`` →
roll back from the page → the client sees the original again. HTML payloads stored in trials and
exemplars render as inert text (no dialog, no script ran).

Skipped only where Chromium or Playwright cannot be found (``./bootstrap test`` installs both). The
browser is the system one: ``playwright install`` (a download) is never needed.
"""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from ste_mcp.memory.descriptions import SECTION_HEADER
from tests.fixtures.common import child_env, serve_http
from tests.test_ui import XSS, seed_data_dir

TOKEN = "browser-test-token-3f9a1c7d"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
QUERY = "What is the weather in Lima?"
TOOL = "get_weather"


def find_chromium() -> str | None:
    """$STE_MCP_CHROMIUM, else chromium / chromium-browser / google-chrome on PATH, else None."""
    candidates = [os.environ.get("STE_MCP_CHROMIUM"), "/usr/bin/chromium"]
    candidates += [shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


CHROMIUM = find_chromium()
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright for Python is not installed (pip install playwright)"
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium found (apt-get install chromium, or set STE_MCP_CHROMIUM): browser tests skipped",
)


@pytest.fixture
def server(upstream, upstream_spec, data_dir):
    """A seeded data dir served by `ste-mcp serve --transport http` (token required, no model needed)."""
    seeded = seed_data_dir(data_dir, tool=TOOL, query=QUERY)
    env = child_env(
        data_dir,
        STE_MCP_TOKEN=TOKEN,
        STE_MCP_MEMORY__POLL_INTERVAL_S="0.2",
        STE_MCP_LLM__BASE_URL="http://127.0.0.1:9/v1",  # no judging needed: every stored trial is judged
    )
    args = ["--spec", str(upstream_spec), "--no-explore"]
    with serve_http(args, env, data_dir.parent / "serve.stderr.log", ready_path="/ui/login") as running:
        yield {"base": running.base, **seeded}


async def _served_description(base: str) -> str:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
    ):
        tools = {t.name: t for t in (await client.list_tools()).tools}
        return tools[TOOL].description


def mcp_description(base: str) -> str:
    """What a fresh MCP client session reads for the tool in tools/list (in a thread of its own: the
    Playwright sync API keeps an event loop running in this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, _served_description, base).result()


def learned_text(base: str) -> str | None:
    text = mcp_description(base)
    return text if QUERY in text else None


def wait_until(check: Any, what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.3)


def served_version(page: Any, base: str) -> int | None:
    page.goto(f"{base}/ui/descriptions/{TOOL}")
    marker = page.locator("#served-version")
    return int(marker.inner_text()) if marker.count() else None


def test_review_in_a_real_browser(server, tmp_path):
    base = server["base"]
    original_text = mcp_description(base)
    assert QUERY not in original_text
    dialogs: list[str] = []
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(60_000)
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on(
                "console", lambda m: m.type == "error" and errors.append(f"{m.text} at {m.location['url']}")
            )

            # the token, as MCP clients send it, opens the dashboard
            page.goto(f"{base}/ui/tools")
            assert page.url.endswith("/ui/login")
            page.fill("input[name=token]", TOKEN)
            page.click("button:has-text('Log in')")
            page.wait_for_url(f"{base}/ui/tools")
            assert page.locator("table.grid").get_by_text(TOOL, exact=True).count() == 1

            # approve the candidate on the page -> the server renders a new description version
            page.goto(f"{base}/ui/exemplars?tool={TOOL}")
            before = served_version(page, base)
            page.goto(f"{base}/ui/exemplars?tool={TOOL}")
            row = page.locator(f"tr[data-id='{server['original'].id}']")
            assert "How's the weather in Lima today?" in row.inner_text()  # its paraphrase, grouped
            row.locator("button:has-text('approve')").click()
            page.wait_for_selector(".flash")
            assert "now approved" in page.inner_text(".flash")
            learned = wait_until(
                lambda: (
                    (v := served_version(page, base)) not in (None, before)
                    and QUERY in page.inner_text("#served-text")
                    and v
                ),
                "the server to render the approved exemplar into the description",
            )
            page_text = page.inner_text("#served-text")
            assert SECTION_HEADER in page_text
            # the server serves what it stored once its next pass reloads the table (memory.poll_s)
            client_text = wait_until(lambda: learned_text(base), "clients to see the new text")
            assert client_text.strip() == page_text.strip()
            shot = os.environ.get("STE_MCP_UI_SCREENSHOT")  # docs/ui-description.png is taken this way
            page.screenshot(path=shot or str(tmp_path / "description.png"), full_page=False)

            # roll back from the page -> clients read the original again
            page.select_option("#rollback select[name=version]", label="v1 — original")
            page.click("#rollback button")
            page.wait_for_selector(".flash")
            assert "now serves the text of v1" in page.inner_text(".flash")
            assert served_version(page, base) > learned
            wait_until(
                lambda: mcp_description(base) == original_text, "clients to see the original description"
            )
            # a refused change says why on the page (htmx swaps error pages in too)
            page.select_option("#rollback select[name=version]", label="v1 — original")
            page.click("#rollback button")
            page.wait_for_selector(".error")
            assert "already serves the text of v1" in page.inner_text(".error")

            # upstream-derived HTML stays text: nothing runs, nothing opens a dialog
            evil = server["trials"][1]
            for path in (f"/ui/trials/{evil.id}", "/ui/trials", "/ui/exemplars?status=any", "/ui/tools"):
                page.goto(f"{base}{path}")
                page.wait_for_load_state("load")
                assert page.evaluate("window.__xss === undefined && parent.__xss === undefined"), path
            page.goto(f"{base}/ui/trials/{evil.id}")
            body = page.inner_text("body")
            assert XSS[0] in body and XSS[1] in body  # shown literally, as text
            assert page.locator("script:not([src])").count() == 0 and page.locator("iframe, svg").count() == 0
            page.goto(f"{base}/ui/exemplars?status=any&tool={TOOL}")
            assert XSS[0] in page.inner_text("#exemplar-list")
            assert page.evaluate("window.__xss === undefined")
            # (the description page is a 404 until the server stores the tool's first version)
            # and the refused rollback is a 400
            expected = (
                f"status of 404 (Not Found) at {base}/ui/descriptions/{TOOL}",
                f"status of 400 (Bad Request) at {base}/ui/descriptions/{TOOL}/rollback",
            )
            assert dialogs == [] and [e for e in errors if not e.endswith(expected)] == []
        finally:
            browser.close()
