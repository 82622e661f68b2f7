"""Script-rendered pages: headless Debian Chromium driven by Selenium, one browser per thread."""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time

from core.crawl.net import FetchError


class ChromiumUnavailable(RuntimeError):
    pass


class Renderer:
    """A small pool of headless Chromium instances; `render(url)` returns the DOM after scripts ran."""

    def __init__(self, *, chromium_path: str, chromedriver_path: str, timeout_s: float, wait_s: float,
                 user_agent: str, max_browsers: int = 2):
        for path, pkg in ((chromium_path, "chromium"), (chromedriver_path, "chromium-driver")):
            if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                raise ChromiumUnavailable(
                    f"{path} not found: JavaScript rendering needs Debian's headless Chromium; "
                    f"install it with `apt-get install -y chromium chromium-driver` (missing: {pkg}) or use render='static'")
        self.chromium_path = chromium_path
        self.chromedriver_path = chromedriver_path
        self.timeout_s = timeout_s
        self.wait_s = wait_s
        self.user_agent = user_agent
        self._slots = threading.Semaphore(max_browsers)
        self._idle: list = []
        self._all: list = []
        self._lock = threading.Lock()

    def _new_driver(self):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        profile = tempfile.mkdtemp(prefix="photolore-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = self.chromium_path
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", f"--user-data-dir={profile}", f"--user-agent={self.user_agent}"):
            opts.add_argument(arg)
        driver = webdriver.Chrome(service=Service(self.chromedriver_path), options=opts)
        driver.set_page_load_timeout(self.timeout_s)
        driver._photolore_profile = profile
        with self._lock:
            self._all.append(driver)
        return driver

    def render(self, url: str) -> tuple[str, str]:
        """(final URL, rendered HTML) of a page; raises `FetchError` on timeout or browser failure."""
        from selenium.common.exceptions import TimeoutException, WebDriverException

        with self._slots:
            with self._lock:
                driver = self._idle.pop() if self._idle else None
            if driver is None:
                try:
                    driver = self._new_driver()
                except WebDriverException as exc:
                    raise FetchError(f"could not start headless Chromium: {exc.msg or exc}") from None
            try:
                driver.get(url)
                deadline = time.monotonic() + self.timeout_s
                while driver.execute_script("return document.readyState") != "complete" and time.monotonic() < deadline:
                    time.sleep(0.05)
                if self.wait_s > 0:
                    time.sleep(self.wait_s)
                return driver.current_url, driver.page_source
            except TimeoutException:
                raise FetchError(f"page load timed out after {self.timeout_s:g} s (js render)") from None
            except WebDriverException as exc:
                raise FetchError(f"browser error: {(exc.msg or str(exc)).splitlines()[0][:200]}") from None
            finally:
                with self._lock:
                    self._idle.append(driver)

    def close(self) -> None:
        with self._lock:
            drivers, self._all, self._idle = self._all, [], []
        for d in drivers:
            try:
                d.quit()
            except Exception:  # a dead browser must not block closing the others
                pass
            shutil.rmtree(getattr(d, "_photolore_profile", ""), ignore_errors=True)
