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


def test_only_matching_photos_and_follow_ups(chat_server, browser_page, tmp_path):
    """Issue #19 on the page: a list holds only photos past the cut-off, says so, and follow-ups resolve."""
    page = browser_page
    page.goto(chat_server, wait_until="domcontentloaded")
    box = page.get_by_placeholder("Ask about your photos", exact=False)
    box.wait_for(timeout=120_000)
    messages = page.locator("[data-testid='stChatMessage']")

    def ask(question: str, n_before: int):
        box.fill(question)
        box.press("Enter")
        answer = messages.nth(n_before + 1)
        answer.locator("[data-testid='stExpander']").first.wait_for(timeout=180_000)  # drawn once the answer is stored
        return answer

    first = ask("show me photos of coffee", 0)
    first.get_by_text("Only 1 photo looks like “coffee”", exact=False).first.wait_for()
    first.get_by_text("[1] coffee.jpg", exact=True).first.wait_for()  # the thumbnail carries the number the answer cites
    first.locator("img").first.wait_for()  # the text can be drawn a moment before the image under load
    assert first.locator("img").count() == 1  # never padded to k
    first.get_by_text("How this answer was made", exact=False).first.click()
    first.get_by_text("search score for “coffee” is at least", exact=False).first.wait_for()
    page.screenshot(path=str(tmp_path / "chat-only.png"), full_page=True)

    similar = ask("show me more like the first one", 2)
    similar.get_by_text("The photos that look most like coffee.jpg", exact=False).first.wait_for()
    similar.locator("img").first.wait_for()
    labels = similar.get_by_text(".jpg", exact=False).all_inner_texts()
    assert similar.locator("img").count() >= 1 and not any(t.endswith("] coffee.jpg") for t in labels)

    rockets = ask("what about rockets?", 4)
    rockets.get_by_text("Only 1 photo looks like “rockets”", exact=False).first.wait_for()
    rockets.locator("img").first.wait_for()
    assert rockets.locator("img").count() == 1
    page.screenshot(path=str(tmp_path / "chat-followups.png"), full_page=True)
    for answer in (first, similar, rockets):  # no note about dropped model sentences in the answers (only in the debug expander)
        text = answer.locator("[data-testid='stMarkdownContainer']").first.inner_text()
        assert "left out" not in text and "grounding" not in text, text
