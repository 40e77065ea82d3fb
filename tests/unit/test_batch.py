"""The batch's answer stays inside a Lambda response: the largest sub-answers give way first."""

from __future__ import annotations

from functions.routes.api.batch import MAX_BATCH_BYTES, SubResponse, _within_size


def answer(sub_id: str, size: int) -> SubResponse:
    return SubResponse(id=sub_id, status=200, headers={"Content-Type": "text/plain"}, body="x" * size)


def test_a_batch_that_fits_is_returned_as_it_is() -> None:
    answers = [answer("a", 1000), answer("b", 2000)]
    assert _within_size(list(answers), "req") == answers


def test_the_largest_answers_become_problems_until_the_batch_fits() -> None:
    big = MAX_BATCH_BYTES // 2
    answers = [answer("small", 100), answer("big1", big), answer("big2", big + 10), answer("big3", big - 10)]
    out = _within_size(answers, "req-9")
    assert [a.id for a in out] == ["small", "big1", "big2", "big3"]  # order kept
    assert [a.status for a in out] == [200, 502, 502, 200]
    assert out[2].body["code"] == "batch_too_large"
    assert out[2].body["request_id"] == "req-9"
    assert sum(len(a.model_dump_json()) for a in out) <= MAX_BATCH_BYTES
