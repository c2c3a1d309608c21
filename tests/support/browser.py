"""Headless Chromium for browser tests, driven through Selenium and Debian's chromedriver.

Everything is local: the browser and driver are Debian's packages (``make deps-test``
installs them), given to Selenium by path, so Selenium Manager never runs and never
downloads anything. A missing browser is an error, not a skip::

    with Browser("status-page") as browser:
        browser.get(url)
        browser.wait_for("#active-calls", text="1")
        browser.screenshot("status-page")

Leaving the ``with`` block always quits the driver and kills whatever Chromium
processes are left. If the block raised, ``<name>-failure.png`` is saved first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Literal

import psutil
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WINDOW_SIZE = (1280, 900)
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS_ENV = "KEEPLINE_SCREENSHOTS"

# Outer window minus viewport, as the first browser of this process measured it.
_ui_extra: tuple[int, int] = (0, 0)

log = logging.getLogger(__name__)


class BrowserUnavailable(RuntimeError):
    """Chromium or chromedriver is missing, or the browser would not start."""


def browser_available() -> str | None:
    """Why the browser cannot run here, or None if both binaries are present.

    For error messages only: browser tests fail, never skip, when this is not None.
    """
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if not missing:
        return None
    return (
        f"missing {' and '.join(missing)}: install Debian's chromium and chromium-driver "
        "(`make deps-test`, or `apt-get install --no-install-recommends chromium chromium-driver`)"
    )


def screenshots_dir() -> Path:
    """Where screenshots go: $KEEPLINE_SCREENSHOTS, else <repo>/test-artifacts/screenshots."""
    configured = os.environ.get(SCREENSHOTS_ENV)
    return Path(configured) if configured else ROOT / "test-artifacts" / "screenshots"


def _file_name(name: str) -> str:
    stem = name.removesuffix(".png")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "screenshot"
    return f"{stem}.png"


def _gone(proc: psutil.Process) -> bool:
    """Exited, or a zombie: dead already, only waiting for its parent to reap it.

    Chromium's zygotes are re-parented to PID 1 when the browser exits; a PID 1 that
    reaps late leaves them as zombies for a while, which no signal can speed up.
    """
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process is gone; return those still alive after ``timeout``."""
    deadline = time.monotonic() + timeout
    while (alive := [p for p in procs if not _gone(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


class Browser:
    """One headless Chromium session; use it as a context manager."""

    def __init__(
        self,
        name: str = "browser",
        *,
        screenshots: Path | None = None,
        page_load_timeout: float = 15.0,
        window_size: tuple[int, int] = WINDOW_SIZE,
    ) -> None:
        self.name = name
        #: The viewport's size in CSS pixels (the wallboard's test wants a TV's).
        self.window_size = window_size
        self.screenshots = screenshots if screenshots is not None else screenshots_dir()
        self.page_load_timeout = page_load_timeout
        self._driver: WebDriver | None = None
        self._service: Service | None = None
        self._tmp: Path | None = None

    # -- lifecycle --------------------------------------------------------

    def __enter__(self) -> Browser:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is not None and self._driver is not None:
                try:
                    path = self.screenshot(f"{self.name}-failure")
                    log.warning("browser failure screenshot: %s", path)
                except Exception:
                    log.warning("could not take a failure screenshot", exc_info=True)
        finally:
            self.close()

    def start(self) -> None:
        if self._driver is not None:
            raise RuntimeError("browser already started")
        reason = browser_available()
        if reason is not None:
            raise BrowserUnavailable(reason)
        # Selenium Manager is skipped when the driver path is given; should anything still
        # call it, keep it offline and quiet.
        os.environ.setdefault("SE_OFFLINE", "true")
        os.environ.setdefault("SE_AVOID_STATS", "true")

        self._tmp = Path(tempfile.mkdtemp(prefix="kl-chromium-"))
        profile = self._tmp / "profile"
        driver_log = self._tmp / "chromedriver.log"

        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for arg in (
            "--headless=new",
            "--no-sandbox",  # we run as root
            "--disable-gpu",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            f"--window-size={self.window_size[0] + _ui_extra[0]},"
            f"{self.window_size[1] + _ui_extra[1]}",
            "--lang=en-US",
            # chromedriver already adds --disable-background-networking, --disable-sync,
            # --no-first-run; these keep the rest of Chromium off the network too.
            "--disable-component-update",
            "--disable-domain-reliability",
        ):
            options.add_argument(arg)

        # Chromium keeps crash reports and caches under XDG dirs, not --user-data-dir;
        # keep those private too, so nothing lands in ~ and every process names our dir.
        env = {
            **os.environ,
            "XDG_CONFIG_HOME": str(self._tmp / "config"),
            "XDG_CACHE_HOME": str(self._tmp / "cache"),
        }
        self._service = Service(
            executable_path=str(CHROMEDRIVER), log_output=str(driver_log), env=env
        )
        try:
            self._driver = webdriver.Chrome(options=options, service=self._service)
            self._driver.set_page_load_timeout(self.page_load_timeout)
            self._driver.set_script_timeout(self.page_load_timeout)
            self._fit_viewport()
        except Exception as err:
            tail = ""
            with contextlib.suppress(OSError):
                tail = "\n".join(driver_log.read_text(errors="replace").splitlines()[-20:])
            self.close()
            raise BrowserUnavailable(
                f"headless Chromium did not start: {err}\nchromedriver log tail:\n{tail}"
            ) from err

    def _fit_viewport(self) -> None:
        """Make the viewport, and so every screenshot, exactly ``window_size``.

        --window-size sizes the outer window, and headless Chromium still keeps room
        for its invisible browser UI, so the page gets less height. The first browser
        measures that room and resizes (a few hundred ms). Later ones start at the
        right size.
        """
        global _ui_extra
        driver = self.driver
        width, height = (int(v) for v in driver.execute_script("return [innerWidth, innerHeight]"))
        if (width, height) == self.window_size:
            return
        outer = driver.get_window_size()
        _ui_extra = (outer["width"] - width, outer["height"] - height)
        driver.set_window_size(self.window_size[0] + _ui_extra[0],
                               self.window_size[1] + _ui_extra[1])

    def close(self) -> None:
        """Quit the driver and make sure no Chromium process of ours outlives it."""
        leftovers = self._our_processes()
        driver, self._driver = self._driver, None
        service, self._service = self._service, None
        try:
            if driver is not None:
                driver.quit()  # also stops the chromedriver service
            elif service is not None and getattr(service, "process", None) is not None:
                service.stop()
        except Exception:
            log.warning("driver.quit() failed; killing Chromium", exc_info=True)
        finally:
            leftovers += self._our_processes()
            alive = [p for p in {p.pid: p for p in leftovers}.values() if not _gone(p)]
            for proc in alive:
                with contextlib.suppress(psutil.Error):
                    proc.terminate()
            for proc in _wait_gone(alive, timeout=3):
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)
                self._tmp = None

    def _our_processes(self) -> list[psutil.Process]:
        """chromedriver's descendants, plus any process naming our private temp dir.

        The second catches processes re-parented to PID 1: crashpad handlers always,
        and the browser's helpers once chromedriver or the browser died.
        """
        found: list[psutil.Process] = []
        process = getattr(self._service, "process", None) if self._service else None
        if process is not None:
            with contextlib.suppress(psutil.Error):
                found += psutil.Process(process.pid).children(recursive=True)
        if self._tmp is not None:
            marker = str(self._tmp)
            for proc in psutil.process_iter(["cmdline"]):
                cmdline = proc.info.get("cmdline") or []
                if any(marker in part for part in cmdline):
                    found.append(proc)
        return found

    # -- use --------------------------------------------------------------

    @property
    def driver(self) -> WebDriver:
        if self._driver is None:
            raise RuntimeError("browser not started: use `with Browser(...) as browser:`")
        return self._driver

    def get(self, url: str) -> None:
        self.driver.get(url)

    def log_in(self, url: str, user: str, password: str, *, then: str = "/",
               heading: str | None = None) -> None:
        """Log in to the web at ``url`` and wait until the page ``then`` shows its heading
        (containing ``heading``, if given)."""
        self.get(f"{url}/login?next={then}")
        self.driver.find_element(By.NAME, "username").send_keys(user)
        self.driver.find_element(By.NAME, "password").send_keys(password)
        self.driver.find_element(By.CSS_SELECTOR, "form.form button[type=submit]").click()
        self.wait_for("h1", text=heading)

    def screenshot(self, name: str) -> Path:
        """Save a PNG of the viewport as <screenshots>/<name>.png and return its path."""
        self.screenshots.mkdir(parents=True, exist_ok=True)
        path = self.screenshots / _file_name(name)
        if not self.driver.save_screenshot(str(path)):
            raise RuntimeError(f"Chromium could not save a screenshot to {path}")
        return path

    def wait_for(
        self, css_selector: str, text: str | None = None, timeout: float = 10.0
    ) -> WebElement:
        """The first visible element matching ``css_selector`` (whose text contains ``text``)."""

        def found(driver: WebDriver) -> WebElement | Literal[False]:
            for element in driver.find_elements(By.CSS_SELECTOR, css_selector):
                if element.is_displayed() and (text is None or text in element.text):
                    return element
            return False

        wait = WebDriverWait(
            self.driver, timeout, ignored_exceptions=(StaleElementReferenceException,)
        )
        try:
            element: WebElement = wait.until(found)
        except TimeoutException as err:
            seen = [e.text for e in self.driver.find_elements(By.CSS_SELECTOR, css_selector)]
            want = f" with text {text!r}" if text is not None else ""
            raise TimeoutException(
                f"no visible {css_selector!r}{want} after {timeout} s; matching texts: {seen!r}"
            ) from err
        return element
