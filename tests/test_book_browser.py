"""The built book, opened in a real (headless) Chromium: equations, figures and tables render, no image or
internal link is broken, and the browser console shows no errors.

Needs `_build/html` (`make book`) and Debian's `chromium`; skips without them, unless
FLATCOMPRESS_REQUIRE_BROWSER=1 (set by .ci/run, which installs chromium and builds the book first).
Talks to Chromium over the DevTools protocol (websocket-client), so no driver is needed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

REPO = Path(__file__).resolve().parent.parent
SITE = REPO / "_build" / "html"
PAGES = ["book/intro.html", "book/train-flat.html", "book/pruning-without-retraining.html",
         "book/lottery-tickets.html", "book/mask-or-optimizer.html",
         "book/tickets-travel.html", "book/structured-pruning.html", "book/quantization.html", "book/scorecard.html",
         "book/teaching.html", "book/chapter-template.html"]


def _need(condition: bool, reason: str) -> None:
    if not condition:
        if os.environ.get("FLATCOMPRESS_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " (FLATCOMPRESS_REQUIRE_BROWSER=1)")
        pytest.skip(reason)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(values["id"])  # type: ignore[arg-type]
        if tag == "a" and values.get("href"):
            self.hrefs.append(values["href"])  # type: ignore[arg-type]


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


class _Browser:
    """Just enough of the DevTools protocol: navigate, evaluate, and collect errors."""

    def __init__(self, binary: str, profile_dir: Path) -> None:
        import websocket

        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-port=0",
             f"--user-data-dir={profile_dir}", "--window-size=1280,2000", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("chromium did not start")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        page = next(t for t in targets if t["type"] == "page")
        # suppress_origin: Chromium refuses DevTools connections that send an Origin it was not told to allow
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, event: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == event for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(event)
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            self.events.append(json.loads(self.ws.recv()))

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result["result"].get("value")

    def open(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def errors(self) -> list[str]:
        out = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                description = details.get("exception", {}).get("description", "")
                out.append(f"exception: {details.get('text', '')} {description} at {details.get('url', '')}:"
                           f"{details.get('lineNumber')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                out.append("console.error: " + " ".join(str(a.get("value", "")) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                out.append("log: " + params["entry"]["text"] + " " + params["entry"].get("url", ""))
            elif method == "Network.loadingFailed" and not params.get("canceled"):
                out.append("failed to load: " + params.get("errorText", ""))
        return out

    def close(self) -> None:
        self.ws.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    _need(SITE.joinpath("index.html").is_file(), "the book is not built (run `make book`)")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    _need(binary is not None, "Debian's chromium is not installed")
    pytest.importorskip("websocket", reason="websocket-client is not installed")
    b = _Browser(binary, tmp_path_factory.mktemp("chromium"))
    yield b
    b.close()


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_without_errors(browser, page):
    browser.open((SITE / page).as_uri())
    # MathJax typesets after load; wait until it reports done (or there is no math on the page).
    browser.evaluate("(window.MathJax && MathJax.startup) ? MathJax.startup.promise.then(() => true) : true")
    broken = browser.evaluate("[...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
    assert broken == [], f"{page}: broken images {broken}"
    assert browser.errors() == [], f"{page}: browser console errors"
    text = browser.evaluate("document.body.innerText")
    for leak in ("Traceback (most recent call last)", "/work/", "/home/", "/root/", "/tmp/", "Warning:"):
        assert leak not in text, f"{page} shows {leak!r}"


@pytest.mark.parametrize("page, equations, figures, rows", [
    ("book/train-flat.html", 3, 2, 4),
    ("book/pruning-without-retraining.html", 3, 1, 1),
    ("book/lottery-tickets.html", 3, 2, 2),
    ("book/mask-or-optimizer.html", 2, 2, 3),
    ("book/tickets-travel.html", 1, 1, 2),  # one row per transfer (two tasks: two), then the verdict cells
    ("book/structured-pruning.html", 3, 1, 2),
    ("book/quantization.html", 3, 1, 8),
])
def test_chapter_shows_equations_figures_and_tables(browser, page, equations, figures, rows):
    browser.open((SITE / page).as_uri())
    browser.evaluate("MathJax.startup.promise.then(() => true)")
    assert browser.evaluate("document.querySelectorAll('mjx-container').length") >= equations  # typeset equations
    assert browser.evaluate("document.querySelectorAll('mjx-container merror').length") == 0  # no TeX errors
    widths = browser.evaluate("[...document.querySelectorAll('.cell_output img')].map(i => i.naturalWidth)")
    assert len(widths) >= figures and all(w > 100 for w in widths)
    assert browser.evaluate("document.querySelectorAll('.cell_output table tbody tr').length") >= rows
    assert browser.errors() == []


def test_internal_links_resolve():
    _need(SITE.joinpath("index.html").is_file(), "the book is not built (run `make book`)")
    broken = []
    for page in PAGES:
        path = SITE / page
        for href in _parse(path).hrefs:
            parts = urlsplit(href)
            if parts.scheme or href.startswith("mailto:"):
                continue
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{page}: {href}")
            elif parts.fragment and target.suffix == ".html" and parts.fragment not in _parse(target).ids:
                broken.append(f"{page}: {href} (no anchor)")
    assert broken == []
