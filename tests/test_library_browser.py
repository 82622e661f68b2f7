"""The Library page in headless Chromium: photo details keep a photo at its own size beside its
caption and full id; a transparent logo gets a visible thumbnail."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.conftest import serve, shot, streamlit_argv

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_details_dialog_layout_and_transparent_logo_thumbnail(demo_env_copy, bundled_backend, browser_page, tmp_path):
    from core.ingest import ingest_folder
    from core.services import build_services
    from core.settings import Settings

    # A white logo on a transparent background, as sites often serve them.
    logo_dir = tmp_path / "in" / "logos"
    logo_dir.mkdir(parents=True)
    logo = Image.new("RGBA", (256, 256), (255, 255, 255, 0))
    ImageDraw.Draw(logo).ellipse((40, 40, 216, 216), fill=(255, 255, 255, 255))
    logo.save(logo_dir / "white_logo.png")
    services = build_services(Settings(data_dir=demo_env_copy), backend=bundled_backend)
    ingest_folder(services, tmp_path / "in")
    logo_photo = next(p for p in services.catalog.list_photos(class_name="logos", limit=10))
    thumb = np.asarray(Image.open(logo_photo.thumb_path).convert("L"), np.float32)
    assert thumb.std() > 20 and thumb.min() < 200, "the logo's thumbnail is blank"  # the white disc shows against the background
    astronaut = next(p for p in services.catalog.list_photos(limit=100) if Path(p.path).name == "astronaut.jpg")
    assert astronaut.width == 512

    page = browser_page
    with serve(streamlit_argv(), "/_stcore/health", tmp_path / "streamlit.log") as url:
        page.goto(url + "/library", wait_until="domcontentloaded")
        button = page.locator(f".st-key-lib-grid-details-{astronaut.id} button >> visible=true").first
        button.click()
        dialog = page.get_by_role("dialog")
        image = dialog.locator("img").first
        image.wait_for()
        page.wait_for_timeout(1000)  # let the dialog finish its layout
        img_box, dialog_box = image.bounding_box(), dialog.bounding_box()
        assert img_box["width"] <= 512 + 1 and img_box["width"] <= dialog_box["width"] / 2, (img_box, dialog_box)
        caption = dialog.get_by_text("Caption:")
        assert caption.bounding_box()["y"] < 1000 and caption.bounding_box()["x"] > img_box["x"] + img_box["width"] - 1  # beside, above the fold
        code = dialog.locator("code").filter(has_text=astronaut.id[:16]).first
        assert code.inner_text().replace("\n", "").strip() == astronaut.id  # the whole id, not cut off
        code_box = code.bounding_box()
        assert code_box["x"] + code_box["width"] <= dialog_box["x"] + dialog_box["width"]
        shot(page, tmp_path, "library-details")
