"""The Generate page in headless Chromium: a small library class trains, Stop gives Start back,
checkpoints stay within their budget, and the Playground offers the newest run first."""
import re

import pytest

from tests.conftest import add_library_class, scroll_to, serve, shot, streamlit_argv

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _pick(page, label: str, option) -> None:
    """Choose `option` (text or pattern) in the Streamlit selectbox labelled `label`."""
    page.locator("[data-testid='stSelectbox']").filter(has_text=label).first.click()
    page.get_by_role("option", name=option, exact=isinstance(option, str)).click()


def _number(page, label: str, value) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")


def test_small_class_trains_stop_restores_start_and_checkpoints_are_pruned(demo_env_copy, bundled_backend, browser_page, tmp_path):
    from core.services import build_services
    from core.settings import Settings

    # 20 photos: enough for a GAN (16), fewer than the default batch of 32.
    services = build_services(Settings(data_dir=demo_env_copy), backend=bundled_backend)
    add_library_class(services, tmp_path / "more", "apartments", 20)
    n = services.catalog.classes()["apartments"]
    assert 16 <= n < 32, n
    page = browser_page
    with serve(streamlit_argv(), "/_stcore/health", tmp_path / "streamlit.log") as url:
        page.goto(url + "/generate", wait_until="domcontentloaded")
        page.get_by_role("tab", name="Train").click()
        run_name = page.get_by_label("Run name", exact=True)
        run_name.wait_for()
        _pick(page, "Class", re.compile(r"^apartments \(\d+ photos\)"))
        page.wait_for_function("() => document.querySelector('input[aria-label=\"Run name\"]').value === 'apartments'", timeout=60_000)
        _pick(page, "Resolution", "32")
        _pick(page, "Model size", "tiny")
        _number(page, "Epochs", 1000)
        _number(page, "Keep every Nth epoch's checkpoint", 5)
        assert page.get_by_label("Batch size", exact=True).input_value() == "32"
        start = page.locator(".st-key-train_start button")
        stop = page.locator(".st-key-train_stop button")
        start.click()
        page.get_by_text(re.compile(r"train: [1-9]\d* / 1000$")).wait_for(timeout=240_000)  # batch = all photos: one step per epoch
        assert start.is_disabled() and stop.is_enabled()
        # A dozen epochs: a dozen checkpoints written, most of them pruned again.
        page.get_by_text(re.compile(r"train: (1[2-9]|[2-9]\d|\d{3,}) / 1000$")).wait_for(timeout=240_000)
        stop.click()
        page.get_by_text(re.compile(rf"Stopped at step \d+ .*batch size {n}\b")).wait_for(timeout=120_000)
        # Once the job has ended the page redraws its buttons: Start is back, Stop is off.
        page.wait_for_function("() => !document.querySelector('.st-key-train_start button').disabled", timeout=60_000)
        assert stop.is_disabled()
        budget = page.get_by_text(re.compile(r"checkpoint files, [\d.]+ MB of a 512 MB budget"))
        budget.wait_for()
        scroll_to(budget)
        shot(page, tmp_path, "generate-train")
        ckpts = list((demo_env_copy / "gan" / "apartments" / "checkpoints").glob("*.pth"))
        epochs = int(re.search(r"\((\d+) epochs", page.get_by_text(re.compile(r"Stopped at step")).inner_text()).group(1))
        assert epochs >= 12
        # latest generator + state, best, and every 5th epoch: far fewer than two files per epoch.
        assert len(ckpts) <= 3 + epochs // 5, sorted(p.name for p in ckpts)

        # Choosing another source renames the run unless the user typed a name.
        page.get_by_text("Shapes demo").click()
        page.wait_for_function("() => document.querySelector('input[aria-label=\"Run name\"]').value === 'shapes'", timeout=60_000)

        # The Playground offers the newest run's latest generator first.
        page.get_by_role("tab", name="Playground").click()
        chosen = page.locator("[data-testid='stSelectbox']").filter(has_text="Checkpoint").first
        chosen.wait_for()
        value = chosen.locator("input").input_value()
        assert re.search(r"apartments / generator_\w+\.pth \(latest", value), value
