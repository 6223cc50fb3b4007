"""Open report.html in headless Chromium (DevTools protocol) and check that everything rendered.

Every figure must be a decoded image with a non-zero on-screen size, every table must have rows
and a non-zero size, the page's own self-check must say ``ok``, and the console must stay free of
errors and uncaught exceptions. Skipped (with the reason) only when no Chromium is installed.
"""

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from taxbench.experiments.analysis.report import ReportOptions, build_report

FIXTURE = Path(__file__).parents[1] / "fixtures" / "report_runs"
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
)

PROBE = """JSON.stringify({
  selfcheck: document.documentElement.getAttribute('data-selfcheck'),
  images: Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, natural: i.naturalWidth,
      w: i.getBoundingClientRect().width, h: i.getBoundingClientRect().height,
      figure: i.closest('figure') ? i.closest('figure').id : null})),
  tables: Array.from(document.querySelectorAll('table')).map(t => ({id: t.id, rows: t.tBodies[0].rows.length,
      w: t.getBoundingClientRect().width, h: t.getBoundingClientRect().height,
      overflow: t.scrollWidth - t.parentElement.clientWidth,
      right: t.getBoundingClientRect().right, viewport: document.documentElement.clientWidth,
      emptyHeaders: Array.from(t.tHead.rows[0].cells).filter(c => !c.textContent.trim()).length})),
  links: Array.from(document.querySelectorAll('a')).map(a => a.getAttribute('href'))
})"""


class DevTools:
    """A minimal Chrome DevTools Protocol client over one page's websocket."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=30))
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(e.get("method") == method for e in self.events):
                return
            try:
                self.events.append(json.loads(self.ws.recv(timeout=max(0.01, deadline - time.monotonic()))))
            except TimeoutError:
                break
        raise AssertionError(f"no {method} within {timeout} s")

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def errors(self) -> list[str]:
        out = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                out.append(f"exception: {params.get('exceptionDetails', {}).get('text')}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                out.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
        return out


@pytest.fixture
def chromium(tmp_path):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium); the browser check needs it")
    profile = tmp_path / "profile"
    proc = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()) and time.monotonic() < deadline:
            assert proc.poll() is None, f"chromium exited with {proc.returncode}"
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as response:
            [page] = [t for t in json.load(response) if t["type"] == "page"]
        from websockets.sync.client import connect

        with connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30) as ws:
            yield DevTools(ws)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_report_html_renders_every_table_and_figure_without_console_errors(tmp_path, chromium):
    shutil.copytree(FIXTURE, tmp_path / "runs")
    data, paths = build_report(
        tmp_path / "runs" / "fixture", ReportOptions(value_per_success=100, price_per_violation=1, n_boot=2000)
    )
    html = paths["report.html"]
    assert "http://" not in html.read_text() and "https://" not in html.read_text()  # self-contained
    check_page(chromium, html, data)


def check_page(chromium, html, data):

    for domain in ("Runtime", "Log", "Page"):
        chromium.call(f"{domain}.enable")
    chromium.call("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)
    chromium.call("Page.navigate", url=html.as_uri())
    chromium.wait_for("Page.loadEventFired")
    for _ in range(100):  # the self-check runs on the load event
        if chromium.evaluate("document.documentElement.getAttribute('data-selfcheck')"):
            break
        time.sleep(0.05)
    page = json.loads(chromium.evaluate(PROBE))

    assert page["selfcheck"] == "ok"
    figures = {img["figure"] for img in page["images"]}
    assert figures == {
        "fig-dose_response",
        "fig-pareto",
        "fig-tax_by_task",
        "fig-tax_by_constraint",
        "fig-learning_curves",
        "fig-break_even",
    }
    for img in page["images"]:
        assert img["complete"] and img["natural"] > 100 and img["w"] > 100 and img["h"] > 50, img
    tables = {t["id"]: t for t in page["tables"]}
    assert set(tables) == {"headline", "dose_response", "tax_by_task", "tax_by_constraint", "runs"}
    expected_rows = {"headline": len(data.headline), "dose_response": len(data.cells), "runs": len(data.runs)}
    for table_id, table in tables.items():
        assert table["rows"] == expected_rows.get(table_id, table["rows"]) > 0 and table["w"] > 0 and table["h"] > 0
        # every column visible at 1,280 px: the table fits its container and the page, and every column is labelled
        assert table["overflow"] <= 1 and table["right"] <= table["viewport"], (table_id, table)
        assert table["emptyHeaders"] == 0, table_id
    assert chromium.errors() == []
