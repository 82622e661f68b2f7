"""The Chat page in a real browser: `streamlit run app.py` on 127.0.0.1, Debian's headless Chromium."""
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def chat_server(streamlit_server):
    """The Chat page of the whole app (the packaged local LLM is the default backend)."""
    return f"{streamlit_server}/chat"


def test_ask_about_the_cat_and_see_its_thumbnail(chat_server, browser_page, tmp_path):
    page = browser_page
    page.goto(chat_server, wait_until="domcontentloaded")
    box = page.get_by_placeholder("Ask about your photos", exact=False)
    box.wait_for(timeout=120_000)
    page.get_by_text("SmolLM2", exact=False).first.wait_for(timeout=120_000)  # the active LLM is shown
    box.fill("what is in the photo of the cat?")
    box.press("Enter")
    answer = page.locator("[data-testid='stChatMessage']").nth(1)
    answer.get_by_text("chelsea.jpg", exact=False).first.wait_for(timeout=180_000)
    thumb = answer.locator("img")
    thumb.first.wait_for(timeout=180_000)  # drawn after the answer has streamed and the page reran
    assert thumb.count() == 1
    page.screenshot(path=str(tmp_path / "chat.png"), full_page=True)
    answer.locator("[class*='-details-'] button").first.click()  # the info button (icon, tooltip "Details")
    page.get_by_text("Photo details", exact=False).first.wait_for(timeout=60_000)
