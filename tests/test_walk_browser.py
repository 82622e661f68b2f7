"""A new user's walk through the app in headless Chromium, over the 72 real evaluation photos
(tests/data/eval/photos) and an empty library: what the pages say must not mislead."""
import os
from pathlib import Path

import pytest

from tests.conftest import serve, shot, streamlit_argv

pytestmark = [pytest.mark.browser, pytest.mark.slow]
EVAL = Path(__file__).parent / "data" / "eval" / "photos"


def _env(data_dir: Path, tmp: Path) -> dict:
    return dict(os.environ, PHOTOLORE_DATA_DIR=str(data_dir), PHOTOLORE_BACKEND="bundled",
                PHOTOLORE_SECRETS=str(tmp / "no-secrets.toml"))


@pytest.fixture(scope="module")
def eval_data_dir(tmp_path_factory, bundled_backend):
    """A data dir holding the 72 evaluation photos, ingested with the default settings."""
    from core.ingest import ingest_folder
    from core.services import build_services
    from core.settings import Settings

    data = tmp_path_factory.mktemp("walk-eval") / "data"
    services = build_services(Settings(data_dir=data), backend=bundled_backend)
    report = ingest_folder(services, EVAL)
    assert services.catalog.count() == 72, report.summary()
    return data


@pytest.fixture(scope="module")
def eval_app(eval_data_dir, tmp_path_factory):
    """`streamlit run app.py` over the evaluation library (one server for the module's tests)."""
    tmp = tmp_path_factory.mktemp("walk-eval-app")
    with serve(streamlit_argv(), "/_stcore/health", tmp / "streamlit.log", env=_env(eval_data_dir, tmp)) as url:
        yield url


@pytest.fixture
def empty_app(tmp_path):
    """The app over an empty library."""
    with serve(streamlit_argv(), "/_stcore/health", tmp_path / "streamlit.log", env=_env(tmp_path / "data", tmp_path)) as url:
        yield url


def test_library_pages_through_every_photo(eval_app, eval_data_dir, bundled_backend, browser_page, tmp_path):
    """72 photos: the grid shows 48 at a time and says so; the last photos are one choice away (they were unreachable)."""
    from core.catalog import Catalog
    from core.settings import Settings

    photos = Catalog(Settings(data_dir=eval_data_dir).catalog_target).list_photos(limit=100)
    first, last = photos[0], photos[-1]
    page = browser_page
    page.goto(eval_app + "/library", wait_until="domcontentloaded")
    page.locator(f".st-key-lib-grid-details-{first.id} button >> visible=true").first.wait_for()
    assert page.locator(f".st-key-lib-grid-details-{last.id}").count() == 0
    chooser = page.locator(".st-key-lib-page")
    assert chooser.locator("input").input_value() == "1–48 of 72"
    chooser.locator("input").click()
    page.get_by_role("option", name="49–72 of 72").click()
    page.locator(f".st-key-lib-grid-details-{last.id} button >> visible=true").first.wait_for()
    # the first page's photos must go; a rerun leaves stale elements up until it ends, so wait for that
    page.locator(f".st-key-lib-grid-details-{first.id}").first.wait_for(state="detached", timeout=20_000)
    assert page.locator(f".st-key-lib-grid-details-{first.id}").count() == 0
    shot(page, tmp_path, "walk-library-page-2")


def test_photo_details_say_what_is_a_guess(eval_app, eval_data_dir, browser_page, tmp_path):
    """A machine caption ("a person with a porcupine" on a dandelion field) is labelled a guess, in words, not
    "(bundled:bundled-effnetlite0-minilm)"; the facts say their numbers are confidences and why Objects differ from Tags."""
    from core.catalog import Catalog
    from core.settings import Settings

    photo = next(p for p in Catalog(Settings(data_dir=eval_data_dir).catalog_target).list_photos(limit=100)
                 if Path(p.path).name == "dandelion_field.jpg")
    page = browser_page
    page.goto(eval_app + "/library", wait_until="domcontentloaded")
    button = page.locator(f".st-key-lib-grid-details-{photo.id} button >> visible=true").first
    button.wait_for()
    shot(page, tmp_path, "walk-details-before")
    button.click(timeout=20_000)
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("a guess, it can be wrong", exact=False).wait_for()
    # the dialog fills in from the top down: read it once its last part (the facts) is there
    dialog.get_by_text("higher than any single tag", exact=False).wait_for()
    text = dialog.inner_text()
    assert f"({photo.caption_source})" not in text  # the raw source id is no explanation
    assert "the model's top ImageNet classes for the whole photo" in text
    assert "guesses, not certainties" in text and "higher than any single tag" in text
    shot(page, tmp_path, "walk-details-guess")


def test_empty_library_says_how_to_fill_it_in_search_chat_and_annotate(empty_app, browser_page, tmp_path):
    """An empty library: Search says so before a query is typed, Chat names the fix instead of "0 photos match",
    and Annotate's Run is off (it "annotated 0 of 0" and left "choose photos and press Run" standing)."""
    page = browser_page
    page.goto(empty_app + "/search", wait_until="domcontentloaded")
    page.get_by_text("The library is empty: add photos on the Library page", exact=False).wait_for()
    shot(page, tmp_path, "walk-empty-search")

    page.goto(empty_app + "/chat", wait_until="domcontentloaded")
    box = page.get_by_placeholder("Ask about your photos", exact=False)
    for i, question in enumerate(("how many photos are there?", "show me photos of cats")):
        box.fill(question)
        box.press("Enter")
        answer = page.locator("[data-testid='stChatMessage']").nth(2 * i + 1)
        answer.get_by_text("The library is empty", exact=False).first.wait_for()
        assert "0 photos match" not in answer.inner_text() and "add photos first" in answer.inner_text()
    shot(page, tmp_path, "walk-empty-chat")

    page.goto(empty_app + "/annotate", wait_until="domcontentloaded")
    page.get_by_text("The library is empty: add photos on the Library page", exact=False).wait_for()
    page.get_by_text("No photos: add some on the Library page.").wait_for()  # the review section, drawn after Run
    assert page.locator(".st-key-ann-run button").first.is_disabled()
    assert page.get_by_text("choose photos and press Run", exact=False).count() == 0
    shot(page, tmp_path, "walk-empty-annotate")


def test_weaker_matches_cut_off_reads_at_the_scores_precision(eval_app, eval_data_dir, bundled_backend, browser_page, tmp_path):
    """"a bird": the nuthatch scores 0.630, just under the cut-off 0.631; the page said "Scores below 0.63" above a
    "0.630", which reads as a match filed as weaker. The cut-off is shown with the scores' three decimals."""
    from core.search import search_text, split_matches
    from core.services import build_services
    from core.settings import Settings

    query = "a bird"
    strong, weak, cut = split_matches(bundled_backend, search_text(build_services(Settings(data_dir=eval_data_dir),
                                                                                  backend=bundled_backend), query, k=12))
    assert strong and weak
    page = browser_page
    page.goto(eval_app + "/search", wait_until="domcontentloaded")
    box = page.get_by_label("Describe the photo")
    box.fill(query)
    box.press("Enter")
    page.get_by_role("heading", name="Weaker matches").wait_for()
    page.get_by_text(f"Scores below {cut:.3f}, the cut-off for this query", exact=False).wait_for()
    for r in weak:  # every weaker score, as shown, reads below the cut-off as shown
        page.get_by_text(f"{r.score:.3f} · {Path(r.photo.path).name}", exact=True).wait_for()
        assert float(f"{r.score:.3f}") < float(f"{cut:.3f}"), (r.score, cut)
    shot(page, tmp_path, "walk-search-bird")


def test_library_has_its_own_address(eval_app, browser_page, tmp_path):
    """/library (a bookmark, a typed URL) opened "Page not found" over the Library once the router ran, because
    the Library was the default page, served at "/" only. Now "/" goes to /library and /library is the Library."""
    page = browser_page
    for visit in (eval_app + "/library", eval_app + "/library", eval_app):  # new sessions: the router runs from the first
        page.goto(visit, wait_until="domcontentloaded")
        page.get_by_text("Photos shown").wait_for()
        page.wait_for_timeout(1500)  # the "Page not found" dialog came with the first render
        assert page.get_by_text("Page not found").count() == 0
        assert page.get_by_role("dialog").count() == 0
        assert page.url.rstrip("/").endswith("/library")  # before: "/", a first visit to /library was sent there too
    shot(page, tmp_path, "walk-library-address")


def test_search_with_nothing_passing_names_the_control_to_change(eval_app, browser_page, tmp_path):
    """A minimum score no photo reaches: the page said "No photo passes the threshold and filters." with no filter on;
    it names what is on (the minimum score, with its value) and where to change it."""
    page = browser_page
    page.goto(eval_app + "/search", wait_until="domcontentloaded")
    slider = page.locator(".st-key-search-threshold input[type='range']")
    slider.focus()
    slider.press("End")  # 1.00: a score no photo reaches
    page.locator(".st-key-search-threshold [data-testid='stSliderThumbValue']").get_by_text("1.00").wait_for()
    box = page.get_by_label("Describe the photo")
    box.fill("a cat")
    box.press("Enter")
    page.get_by_text("No photo passes the minimum score 1.00 (lower it in the sidebar).", exact=True).wait_for()
    assert page.get_by_text("filters", exact=False).filter(has_text="No photo passes").count() == 0
    shot(page, tmp_path, "walk-search-nothing-passes")


def test_chat_names_a_group_of_scenes_without_nested_parentheses(eval_app, browser_page, tmp_path):
    """Issue #19's "which room has a motorcycle?": the answer read "(rooms (kitchen, bathroom, ...))"."""
    page = browser_page
    page.goto(eval_app + "/chat", wait_until="domcontentloaded")
    box = page.get_by_placeholder("Ask about your photos", exact=False)
    box.fill("which room has a motorcycle?")
    box.press("Enter")
    answer = page.locator("[data-testid='stChatMessage']").nth(1)
    answer.get_by_text("(rooms: kitchen / bathroom / bedroom", exact=False).first.wait_for()
    assert "((" not in answer.inner_text() and "))" not in answer.inner_text()
    shot(page, tmp_path, "walk-chat-rooms")
