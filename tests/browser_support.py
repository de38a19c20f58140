"""What the Chromium browser tests (Playwright) share: the browser, a live server, screenshots.

The app runs under uvicorn in a background thread on a free local port (:func:`serve_app`);
Chromium is the system one at ``/usr/bin/chromium`` (:func:`open_chromium`). Without it a
browser test is skipped — except in CI (``CI=true``), where it fails (:func:`need_chromium`).
Screenshots go to the test's folder and, when ``/work/helper-notes`` exists, are copied to its
``screenshots/`` folder for people to look at (:func:`screenshot`).

``tests/`` is on ``sys.path`` (``tests/conftest.py`` lives there), so every test folder can
``import browser_support``.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SHOTS_COPY = Path("/work/helper-notes/screenshots")
IN_CI = os.environ.get("CI", "").lower() == "true"
#: Seconds the server may take to start before the test fails.
START_TIMEOUT = 30.0


def need_chromium() -> None:
    """Skip the test when Chromium is not installed — fail instead in CI (``CI=true``)."""
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is not installed (apt-get install chromium)"
    if IN_CI:
        pytest.fail(message + " — required in CI")
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Run the ASGI ``app`` under uvicorn in a daemon thread on a free port; yield its base URL.

    Waits until uvicorn has started (fails the test after :data:`START_TIMEOUT` seconds or when
    the server thread dies). At exit the server is stopped, its thread joined and the app's
    database engine (``app.state.engine``, when there is one) disposed of.
    """
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("uvicorn did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine = getattr(app.state, "engine", None)
        if engine is not None:
            engine.dispose()


def launch_chromium(playwright: Playwright) -> Browser:
    """The system's headless Chromium, launched through ``playwright``."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                      args=CHROMIUM_ARGS)


@contextmanager
def open_chromium() -> Iterator[Browser]:
    """A headless Chromium for the duration of the block (skips or fails without it)."""
    need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Page, folder: Path, name: str) -> Path:
    """Save a full-page screenshot as ``folder/<name>.png`` (and copy it for people to see)."""
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if SHOTS_COPY.parent.exists():
        SHOTS_COPY.mkdir(exist_ok=True)
        shutil.copy(path, SHOTS_COPY / path.name)
    return path
