"""Browser test: the Retrieval lab page in headless Chromium runs an evaluation and shows results."""
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("chromium/chromedriver not installed (apt-get install chromium chromium-driver)")
    port = _free_port()
    env = dict(os.environ, PHOTOLORE_DATA_DIR=str(tmp_path / "data"), STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "pages/retrieval_lab.py", "--server.headless", "true",
                             "--server.port", str(port), "--server.address", "127.0.0.1"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.5)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_run_evaluation_in_browser(server, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'chrome'}", "--window-size=1400,2400"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=webdriver.ChromeService("/usr/bin/chromedriver"), options=opts)
    try:
        driver.get(server)
        wait = WebDriverWait(driver, 180)
        wait.until(EC.presence_of_element_located((By.XPATH, "//h1[contains(., 'Retrieval lab')]")))

        def set_number(label: str, value: int) -> None:
            box = wait.until(EC.presence_of_element_located((By.XPATH, f"//div[@data-testid='stNumberInput'][.//p[text()='{label}']]//input")))
            box.send_keys(Keys.CONTROL, "a")
            box.send_keys(str(value))

        set_number("Shapes: images", 36)
        set_number("Queries", 6)
        set_number("Bag-of-features size", 16)
        set_number("Clusters", 3)
        set_number("Ranking depth", 40)
        # Drop "deep" so no model loads: Backspace removes the last two chips (random, deep),
        # then "random" is typed back in.
        methods = driver.find_element(By.XPATH, "//div[@data-testid='stMultiSelect']//input")
        methods.click()
        methods.send_keys(Keys.BACKSPACE, Keys.BACKSPACE)
        methods.send_keys("random")
        methods.send_keys(Keys.ENTER, Keys.ESCAPE)
        driver.find_element(By.TAG_NAME, "h1").click()  # close the multiselect's dropdown
        driver.find_element(By.XPATH, "//button[.//p[text()='Run evaluation']]").click()
        wait.until(EC.presence_of_element_located((By.XPATH, "//button[.//p[text()='Download CSV']]")))
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "Results on shapes-36" in body
        assert "Download CSV" in body
        assert driver.find_elements(By.XPATH, "//*[@data-testid='stDataFrame' or @data-testid='stTable']")
        assert not driver.find_elements(By.XPATH, "//*[@data-testid='stException']")
        # The results table fits the page: nothing cut off on the right (metrics are rows, methods columns).
        overflow = driver.execute_script(
            "const s = document.querySelector('[data-testid=stDataFrame] .dvn-scroller'); return s ? s.scrollWidth - s.clientWidth : null")
        assert overflow is not None and overflow <= 1, overflow
        # 36 images less 6 queries leave 30 in the gallery: the curves stop there and the page says why.
        assert "drawn up to k = 30, the gallery size" in body
    finally:
        driver.quit()
