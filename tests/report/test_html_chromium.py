"""The report in a real headless Chromium (DevTools protocol): no console errors, no network
requests, every chart drawn (non-blank pixels in a screenshot), a hostile recipe name shown as text.
"""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import json
import re
import shutil
import subprocess
import tempfile

import numpy as np
import pytest

from reglab.report.html import write_report

from ._synthetic import XSS, synthetic_study

aiohttp = pytest.importorskip(
    "aiohttp", reason="aiohttp (installed with ray[default]) drives the DevTools socket"
)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
)


def _launch(profile: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "--window-size=1280,900",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stderr:
        m = re.search(r"DevTools listening on (ws://\S+)", line)
        if m:
            return proc, m.group(1)
    proc.kill()
    raise RuntimeError("chromium did not start its DevTools endpoint")


async def _inspect(browser_ws: str, url: str) -> dict:
    port = re.search(r":(\d+)/", browser_ws).group(1)
    ids = itertools.count(1)
    events: list[dict] = []
    async with aiohttp.ClientSession() as http:
        pages = await (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
        page = next(p for p in pages if p["type"] == "page")
        async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:

            async def call(method: str, **params):
                i = next(ids)
                await ws.send_json({"id": i, "method": method, "params": params})
                while True:
                    msg = json.loads((await ws.receive(timeout=60)).data)
                    if msg.get("id") == i:
                        if "error" in msg:
                            raise RuntimeError(msg["error"])
                        return msg["result"]
                    events.append(msg)

            for domain in ("Page", "Network", "Runtime", "Log"):
                await call(f"{domain}.enable")
            await call("Page.navigate", url=url)
            while not any(e.get("method") == "Page.loadEventFired" for e in events):
                events.append(json.loads((await ws.receive(timeout=60)).data))
            probe = """JSON.stringify({
              charts: Array.from(document.querySelectorAll("img.chart")).map(function (img) {
                var r = img.getBoundingClientRect();
                return {w: img.naturalWidth, x: r.left + scrollX, y: r.top + scrollY,
                        cw: r.width, ch: r.height};
              }),
              scripts: document.scripts.length,
              body: document.body.innerText,
              xssInCells: Array.from(document.querySelectorAll("#ranking-table td")).some(
                function (td) { return td.textContent === %s; })
            })""".replace("%s", json.dumps(XSS))
            found = json.loads((await call("Runtime.evaluate", expression=probe))["result"]["value"])
            shots = []
            for c in found["charts"]:
                clip = {"x": c["x"], "y": c["y"], "width": c["cw"], "height": c["ch"], "scale": 1}
                shot = await call(
                    "Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True
                )
                shots.append(base64.b64decode(shot["data"]))
    found["shots"] = shots
    found["events"] = events
    return found


@pytest.fixture(scope="module")
def page():
    from matplotlib.image import imread

    with tempfile.TemporaryDirectory() as tmp:
        html_path, _ = write_report(synthetic_study(seeds=2, epochs=20), f"{tmp}/report.html")
        proc, ws = _launch(f"{tmp}/profile")
        try:
            found = asyncio.run(_inspect(ws, html_path.as_uri()))
        finally:
            proc.kill()
            proc.wait(timeout=30)
        found["pixels"] = [imread(io.BytesIO(s)) for s in found["shots"]]
        found["url"] = html_path.as_uri()
        return found


def test_no_console_errors_or_exceptions(page):
    bad = [
        e
        for e in page["events"]
        if e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]
    assert bad == []


def test_no_network_requests(page):
    urls = [
        e["params"]["request"]["url"]
        for e in page["events"]
        if e.get("method") == "Network.requestWillBeSent"
    ]
    assert page["url"] in urls  # the protocol did record requests: the page itself
    assert [u for u in urls if not u.startswith(("file:", "data:"))] == []


def test_every_chart_is_rendered(page):
    assert len(page["charts"]) == 5  # curves, gap, paths, weights, norms
    for chart, px in zip(page["charts"], page["pixels"]):
        assert chart["w"] > 100 and chart["cw"] > 100 and chart["ch"] > 100
        gray = px[..., :3].mean(axis=2)
        assert np.mean(gray < 0.9) > 0.02, "chart region is blank"
        assert gray.std() > 0.05


def test_hostile_recipe_name_shows_as_text(page):
    assert page["xssInCells"]
    assert XSS in page["body"]
    assert page["scripts"] == 1  # only the report's own sorting script
    assert not any(e.get("method") == "Page.javascriptDialogOpening" for e in page["events"])
