"""The verification pages in a real browser: Debian chromium (headless, phone viewport) driven by Playwright.

Screenshots go to test-artifacts/web/ (git-ignored) for people to look at.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.web_fixtures import ARTIFACTS, IMPORT_LOT, RETAIL_RECORD, WebWorld, appended

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(tmp_path: Path) -> Iterator[Any]:
    """A phone-sized page in a fresh chromium profile (skipped when chromium or Playwright is missing)."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=PHONE,
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="zh-CN",
            user_agent="Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/130.0 Mobile Safari/537.36",
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(30_000)
            yield page
        finally:
            context.close()


def _shot(page: Any, name: str, database_url: str) -> Path:
    """Save a full-page screenshot under test-artifacts/web/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    backend = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    path = ARTIFACTS / f"{name}-{backend}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _no_horizontal_scroll(page: Any) -> None:
    """The page fits the phone's width."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px phone"


def test_qr_code_target_says_verified(web_world: WebWorld, phone: Any) -> None:
    world = web_world
    certificate_id = world.certificate_id(RETAIL_RECORD)
    errors: list[str] = []
    phone.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    response = phone.goto(f"{world.url}/verify/{certificate_id}")
    assert response is not None and response.status == 200
    verdict = phone.locator(".verdict-title")
    assert verdict.inner_text() == "验证通过"
    assert phone.locator(".verdict").get_attribute("data-status") == "valid"
    assert world.records[RETAIL_RECORD]["product"]["name"] in phone.locator("main").inner_text()
    assert phone.locator(".timeline .tl-item").count() >= 4
    _no_horizontal_scroll(phone)
    assert not errors, errors  # the CSP lets the page's own CSS and JS load, and nothing else is asked for
    _shot(phone, "qr-valid", world.world.database_url)


def test_uploading_a_tampered_pdf_says_failed(web_world: WebWorld, phone: Any, tmp_path: Path) -> None:
    world = web_world
    tampered = tmp_path / "certificate.pdf"
    tampered.write_bytes(appended(world.pdf(RETAIL_RECORD)))
    phone.goto(f"{world.url}/verify")
    _no_horizontal_scroll(phone)
    _shot(phone, "search", world.world.database_url)
    phone.set_input_files("input[type=file]", str(tampered))
    assert phone.locator("[data-file-name]").inner_text() == "certificate.pdf"
    with phone.expect_navigation():
        phone.locator("form.upload button[type=submit]").click()
    assert phone.locator(".verdict-title").inner_text() == "验证失败"
    assert phone.locator(".check-invalid").count() >= 2
    _no_horizontal_scroll(phone)
    _shot(phone, "upload-tampered", world.world.database_url)


def test_recalled_lot_page(web_world: WebWorld, phone: Any) -> None:
    world = web_world
    world.world.agency_client("regulator").recall(IMPORT_LOT, "进口冷冻猪肉核酸检测阳性")
    world.world.index()
    world.verify(world.certificate_id(RETAIL_RECORD))  # a second verification: the count shows 2
    phone.goto(f"{world.url}/verify/{world.certificate_id(RETAIL_RECORD)}")
    assert phone.locator(".verdict-title").inner_text() == "已召回"
    assert "进口冷冻猪肉核酸检测阳性" in phone.locator(".alert-danger").inner_text()
    _no_horizontal_scroll(phone)
    _shot(phone, "qr-recalled", world.world.database_url)
