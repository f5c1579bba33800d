"""The demo in a real browser (headless Chromium from Debian, driven by
Selenium) against real gunicorn and real uWSGI.

Two browser sessions enter the same room, see each other's presence and the
WebSocket transport, exchange an acknowledged message and a private one, and
run the CPU job; a screenshot of one page goes to tests/artifacts/.  Needs
the Debian packages ``chromium`` and ``chromium-driver`` (no browser is
downloaded) and ``npm ci --prefix server/demo`` (scripts/bootstrap does both).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from tests.livesupport import free_port

pytestmark = [pytest.mark.live, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CLIENT_JS = ROOT / "server" / "demo" / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
BIN = Path(sys.executable).parent
WAIT = 20  # seconds any page condition may take before the test fails


def _command(server: str, port: int) -> list[str]:
    if server == "gunicorn":
        if (ROOT / "gunicorn.conf.py").exists():
            return [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"]
        return [str(BIN / "gunicorn"), "-k", "gthread", "--threads", "8",
                "-b", f"127.0.0.1:{port}", "wsgi:app"]
    if (ROOT / "uwsgi.ini").exists():
        return [str(BIN / "uwsgi"), "--ini", "uwsgi.ini"]
    return [str(BIN / "uwsgi"), "--http-socket", f"127.0.0.1:{port}", "--module", "wsgi:app",
            "--threads", "8", "--master", "--lazy-apps"]


@pytest.fixture(params=["gunicorn", "uwsgi"])
def demo_url(request, tmp_path):
    """The demo (wsgi:app) served by a real server on a free loopback port."""
    server = request.param
    if not (BIN / server).exists():
        pytest.skip(f"{server} is not installed in {BIN} (pip install 'server[test]')")
    if not CLIENT_JS.exists():
        pytest.skip("the Socket.IO client is missing: npm ci --prefix server/demo")
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SERVER_")},
           "SERVER_BIND": f"127.0.0.1:{port}", "SERVER_THREADS": "8",
           "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "PYTHONPATH": str(ROOT)}
    log_path = tmp_path / f"{server}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(_command(server, port), cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{server} exited with {proc.returncode}:\n{log_path.read_text()}")
            try:
                if requests.get(url + "/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{server} not ready on {url} in 30 s:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield server, url
    finally:
        proc.terminate()  # this PID only
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        print(f"--- {server} log ---\n{log_path.read_text()[-3000:]}")  # shown on failure


@pytest.fixture
def browsers():
    """A factory of headless Chromium sessions, each with a fresh profile."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(path):
            pytest.skip(f"{path} is missing: apt-get install chromium chromium-driver")
    made = []

    def make():
        profile = tempfile.mkdtemp(prefix="demo-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--window-size=1200,900", "--lang=en-US",
                     f"--user-data-dir={profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        made.append((driver, profile))
        return driver

    yield make
    for driver, profile in made:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _text(driver, element_id):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id).text


def _wait_for(driver, what, condition):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT, poll_frequency=0.05).until(condition)
    except TimeoutException:
        body = driver.find_element("tag name", "body").text
        pytest.fail(f"waited {WAIT} s for {what}; the page shows:\n{body}")


def _enter(driver, url, name, room):
    from selenium.webdriver.common.by import By

    driver.get(url + "/")
    driver.find_element(By.ID, "name").send_keys(name)
    room_box = driver.find_element(By.ID, "room")
    room_box.clear()
    room_box.send_keys(room)
    driver.find_element(By.ID, "enter").click()


def _log_lines(driver):
    from selenium.webdriver.common.by import By

    return [p.text for p in driver.find_elements(By.CSS_SELECTOR, "#log p")]


def test_two_browsers_chat_over_websocket(demo_url, browsers):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    server, url = demo_url
    alice, bob = browsers(), browsers()
    _enter(alice, url, "alice", "browsers")
    _enter(bob, url, "bob", "browsers")

    for me, them in ((alice, "bob"), (bob, "alice")):
        _wait_for(me, f"{them} in the room's presence list",
                  lambda d, them=them: them in _text(d, "presence"))
        _wait_for(me, "the WebSocket transport",
                  lambda d: _text(d, "transport") == "websocket")
        _wait_for(me, "the server clock",
                  lambda d: re.fullmatch(r"\d\d:\d\d:\d\d", _text(d, "clock")))

    # an acknowledged message to the room
    alice.find_element(By.ID, "text").send_keys("hello from alice")
    alice.find_element(By.ID, "send").click()
    _wait_for(bob, "alice's message", lambda d: "alice: hello from alice" in _log_lines(d))
    _wait_for(alice, "the ack of alice's message", lambda d: d.find_elements(
        By.CSS_SELECTOR, "#log p.acked"))

    # a private message, bob -> alice
    _wait_for(bob, "alice in the recipient list", lambda d: "only alice" in _text(d, "to"))
    Select(bob.find_element(By.ID, "to")).select_by_visible_text("only alice")
    bob.find_element(By.ID, "text").send_keys("just for you")
    bob.find_element(By.ID, "send").click()
    _wait_for(alice, "bob's private message",
              lambda d: "(private) bob: just for you" in _log_lines(d))

    # the CPU job streams progress and returns its result; chat still works
    limit = alice.find_element(By.ID, "limit")
    limit.clear()
    limit.send_keys("50000000")
    alice.find_element(By.ID, "run-job").click()
    Select(bob.find_element(By.ID, "to")).select_by_value("")  # the room again
    bob.find_element(By.ID, "text").send_keys("still here")
    bob.find_element(By.ID, "send").click()
    _wait_for(alice, "bob's message during the job",
              lambda d: "bob: still here" in _log_lines(d))
    _wait_for(alice, "the job's result",
              lambda d: "3,001,134 primes below 50,000,000" in _text(d, "job-result"))
    _wait_for(alice, "the round-trip meter", lambda d: _text(d, "rtt").endswith(" ms"))
    progress = alice.find_element(By.ID, "job-progress").get_attribute("value")
    assert float(progress) == 1.0, f"the progress bar ended at {progress}, expected 1"

    problems = [e["message"] for d in (alice, bob) for e in d.get_log("browser")
                if e["level"] == "SEVERE"]
    assert not problems, f"the browser console reported errors: {problems}"

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"demo-{server}.png"
    assert alice.save_screenshot(str(shot)), f"could not write {shot}"
    print(f"screenshot: {shot}")
