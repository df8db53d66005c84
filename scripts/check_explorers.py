"""Move every explorer of the built site in headless Chromium, as a reader would.

Serves ``_build/html`` on loopback, opens each chapter, and for every explorer (``.lowdim-explorer``) moves its
first control one step (a slider by the keyboard, a dropdown to the next option, toggle buttons to another
button), then checks that the displayed frame changed. Any console error or page error on any page fails the
check. The browser is Debian's ``chromium`` (``$CHROMIUM`` or ``/usr/bin/chromium``), driven by Playwright's Python
package, which downloads no browser of its own.

Usage: ``python scripts/check_explorers.py _build/html``. Exits 1 on a problem; when Chromium is missing it exits 0
with a note, unless ``REQUIRE_BROWSER=1`` (CI) makes that a failure too.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# Flags for a sandboxed machine with no network: no first-run, sync or background traffic to fail on.
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
RENDER_TIMEOUT_MS = 60_000
CHANGE_TIMEOUT_S = 10.0

VISIBLE_FRAMES = """el => Array.from(el.querySelectorAll('img'))
    .filter(img => img.offsetParent !== null && img.naturalWidth > 0)
    .map(img => img.src)"""


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def serve(root: Path) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def move_first_control(explorer) -> str:
    """Move the explorer's first control one step; returns what was done."""
    control = explorer.locator(".widget-hbox").first.locator(":scope > *").first
    classes = control.get_attribute("class") or ""
    if "widget-dropdown" in classes:
        select = control.locator("select")
        options = select.locator("option").all_inner_texts()
        current = select.evaluate("s => s.selectedIndex")
        target = (current + 1) % len(options)
        select.select_option(index=target)
        return f"dropdown -> {options[target]!r}"
    if "widget-toggle-buttons" in classes:
        buttons = control.locator("button")
        for i in range(buttons.count()):
            if "mod-active" not in (buttons.nth(i).get_attribute("class") or ""):
                buttons.nth(i).click()
                return f"toggle -> {buttons.nth(i).inner_text()!r}"
        raise AssertionError("toggle buttons: no inactive button to press")
    if "widget-slider" in classes or "widget-hslider" in classes:
        handle = control.locator(".noUi-handle").first
        before = control.locator(".widget-readout").first.inner_text()
        handle.focus()
        handle.press("ArrowRight")
        after = control.locator(".widget-readout").first.inner_text()
        if after == before:  # already at the right end
            handle.press("ArrowLeft")
            after = control.locator(".widget-readout").first.inner_text()
        return f"slider {before} -> {after}"
    raise AssertionError(f"first control of unknown kind: {classes}")


def check_page(page, url: str) -> list[str]:
    problems: list[str] = []
    page.goto(url, wait_until="load")
    explorers = page.locator(".lowdim-explorer")
    try:
        explorers.first.wait_for(state="visible", timeout=RENDER_TIMEOUT_MS)
    except Exception:
        return [f"{url}: no explorer rendered within {RENDER_TIMEOUT_MS // 1000} s"]
    for i in range(explorers.count()):
        explorer = explorers.nth(i)
        explorer.scroll_into_view_if_needed()
        page.wait_for_function(f"() => document.querySelectorAll('.lowdim-explorer')[{i}].querySelector('img')")
        before = explorer.evaluate(VISIBLE_FRAMES)
        if len(before) != 1:
            problems.append(f"{url}: explorer {i}: {len(before)} frames visible before moving, expected 1")
            continue
        action = move_first_control(explorer)
        deadline = time.monotonic() + CHANGE_TIMEOUT_S
        after = before
        while after == before and time.monotonic() < deadline:
            page.wait_for_timeout(100)
            after = explorer.evaluate(VISIBLE_FRAMES)
        if len(after) != 1 or after == before:
            problems.append(f"{url}: explorer {i}: the frame did not change after {action}")
        else:
            print(f"  explorer {i}: {action}: the frame changed")
    return problems


def main(site: Path) -> int:
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).is_file():
        message = "browser check skipped: no Chromium (Debian: apt-get install chromium)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            print(message.replace("skipped", "failed"))
            return 1
        print(message)
        return 0
    from playwright.sync_api import sync_playwright

    chapters = sorted((site / "book").glob("[0-9][0-9]_*.html"))
    if not chapters:
        print(f"no chapter pages under {site}/book")
        return 1
    server, base = serve(site)
    problems: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            for html in chapters:
                page = browser.new_page()
                errors: list[str] = []
                page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                url = f"{base}/{html.relative_to(site).as_posix()}"
                print(html.relative_to(site))
                problems += check_page(page, url)
                problems += [f"{url}: console error: {e}" for e in errors]
                page.close()
            browser.close()
    finally:
        server.shutdown()
    for problem in problems:
        print("PROBLEM:", problem)
    print(f"browser check: {len(chapters)} chapters, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "_build/html")))
