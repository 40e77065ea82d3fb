"""The batch's answer stays inside a Lambda response: the largest sub-answers give way first."""

from __future__ import annotations

from typing import Any

from functions.routes.api.batch import MAX_BATCH_BYTES, _wire_size, _within_size


def answer(sub_id: str, size: int, char: str = "x") -> dict[str, Any]:
    return {"id": sub_id, "status": 200, "headers": {"Content-Type": "text/plain"}, "body": char * size}


def test_a_batch_that_fits_is_returned_as_it_is() -> None:
    answers = [answer("a", 1000), answer("b", 2000)]
    assert _within_size(list(answers), "req") == answers


def test_the_largest_answers_become_problems_until_the_batch_fits() -> None:
    big = MAX_BATCH_BYTES // 2
    answers = [answer("small", 100), answer("big1", big), answer("big2", big + 10), answer("big3", big - 10)]
    out = _within_size(answers, "req-9")
    assert [a["id"] for a in out] == ["small", "big1", "big2", "big3"]  # order kept
    assert [a["status"] for a in out] == [200, 502, 502, 200]
    assert out[2]["body"]["code"] == "batch_too_large"
    assert out[2]["body"]["request_id"] == "req-9"
    assert sum(_wire_size(a) for a in out) <= MAX_BATCH_BYTES


def test_sizes_count_the_escaping_the_lambda_response_adds() -> None:
    # Cyrillic is 2 bytes in UTF-8 but 6 once escaped as ASCII-only JSON, twice over
    plain, cyrillic = answer("a", 1000), answer("b", 1000, "д")
    assert _wire_size(cyrillic) > 5 * _wire_size(plain)
    out = _within_size([answer("c", MAX_BATCH_BYTES // 5, "д")], "req")  # 1 M characters, 6 MB escaped
    assert out[0]["status"] == 502
