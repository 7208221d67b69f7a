"""Every service's documentation pages render in a real browser with no internet (issue 15): the
page is loaded by Debian's Chromium from the running service, every other host is unreachable
(as at a border post), and what renders is checked against the service's own documents."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from corridor.auth import Role
from devkit.devstack import Stack
from tests.integration.test_operations_page import CHROMEDRIVER, CHROMIUM, FLAGS

# Any name but the loopback resolves to nothing: a page asking a CDN for its script stays blank.
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"


@pytest.fixture
def offline_browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), "make setup installs Debian's chromium (as root)"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, OFFLINE, "--window-size=1400,2000", f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait_until(driver: webdriver.Chrome, ok: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not render in {timeout:.0f}s; the page says: {driver.title!r}")
        time.sleep(0.3)


@pytest.mark.parametrize("service", ["intake", "uzb-oybek-exit"])
def test_swagger_redoc_and_asyncapi_pages_render_offline(
    stack: Stack, offline_browser: webdriver.Chrome, service: str, tmp_path: Path
) -> None:
    base = stack.url(service) if service == "intake" else stack.border_url(service)
    openapi = httpx.get(f"{base}/openapi.json", timeout=10).json()
    operations = {
        (method, path)
        for path, methods in openapi["paths"].items()
        for method in methods
        if method in {"get", "post", "put", "patch", "delete"}
    }
    driver = offline_browser

    def swagger_operations() -> set[tuple[str, str]]:
        # An operation with several tags is listed under each: compare what is listed, not how often.
        found = set()
        for block in driver.find_elements(By.CSS_SELECTOR, ".opblock"):
            method = block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text.lower()
            path = block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path")
            found.add((method, path))
        return found

    driver.get(f"{base}/docs")
    wait_until(
        driver, lambda: swagger_operations() == operations, f"the {len(operations)} operations in Swagger UI"
    )
    assert driver.save_screenshot(str(tmp_path / f"{service}-docs.png"))

    driver.get(f"{base}/redoc")
    wait_until(
        driver,
        lambda: (
            len(driver.find_elements(By.CSS_SELECTOR, "[data-section-id*='operation/']")) >= len(operations)
        ),
        f"the {len(operations)} operations in ReDoc",
    )

    driver.get(f"{base}/asyncapi")
    token = stack.token(Role.INTEGRATION_CLIENT, "TJK")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "#token-form button").click()
    document = httpx.get(
        f"{base}/asyncapi.json", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).json()
    channels = [c["address"] for c in document["channels"].values()]
    wait_until(
        driver,
        lambda: all(c in driver.find_element(By.ID, "asyncapi").text for c in channels),
        f"the {len(channels)} channels of the AsyncAPI document",
    )
    assert driver.save_screenshot(str(tmp_path / f"{service}-asyncapi.png"))
