"""infra.local.environ: per-invocation environment overlays on a shared process environment."""

from __future__ import annotations

import os
import threading

import pytest

from infra.local import environ
from infra.local.environ import OverlayEnviron, function_environment

SAFETY_S = 10


@pytest.fixture(autouse=True)
def installed(monkeypatch: pytest.MonkeyPatch) -> None:
    environ.install()  # idempotent; replaces os.environ process-wide on first call
    monkeypatch.setenv("ENVIRON_TEST_BASE", "base")
    monkeypatch.delenv("ENVIRON_TEST_ONLY_IN_FN", raising=False)
    monkeypatch.delenv("ENVIRON_TEST_SET_INSIDE", raising=False)


def test_given_install_called_twice_then_os_environ_is_wrapped_once() -> None:
    first = os.environ

    environ.install()

    assert isinstance(os.environ, OverlayEnviron)
    assert os.environ is first


def test_given_an_overlay_when_inside_then_its_values_shadow_the_base_and_vanish_after() -> None:
    # When inside
    with function_environment({"ENVIRON_TEST_BASE": "fn", "ENVIRON_TEST_ONLY_IN_FN": 42}):
        inside = (os.environ["ENVIRON_TEST_BASE"], os.getenv("ENVIRON_TEST_ONLY_IN_FN"))
        keys = set(os.environ)
        length = len(os.environ)

    # Then the overlay is seen (values as strings), and only there
    assert inside == ("fn", "42")
    assert {"ENVIRON_TEST_BASE", "ENVIRON_TEST_ONLY_IN_FN"} <= keys
    assert length == len(keys)
    assert os.environ["ENVIRON_TEST_BASE"] == "base"
    assert "ENVIRON_TEST_ONLY_IN_FN" not in os.environ


def test_given_an_overlay_when_copied_then_the_copy_is_the_merged_view() -> None:
    with function_environment({"ENVIRON_TEST_ONLY_IN_FN": "x"}):
        copied = os.environ.copy()

    assert copied["ENVIRON_TEST_ONLY_IN_FN"] == "x"
    assert copied["ENVIRON_TEST_BASE"] == "base"


def test_given_an_overlay_when_a_thread_is_started_inside_then_it_sees_only_the_base() -> None:
    # Given
    seen: dict[str, str | None] = {}

    def read() -> None:
        seen["base"] = os.environ.get("ENVIRON_TEST_BASE")
        seen["fn"] = os.environ.get("ENVIRON_TEST_ONLY_IN_FN")

    # When
    with function_environment({"ENVIRON_TEST_BASE": "fn", "ENVIRON_TEST_ONLY_IN_FN": "yes"}):
        thread = threading.Thread(target=read)
        thread.start()
        thread.join(SAFETY_S)

    # Then
    assert seen == {"base": "base", "fn": None}


def test_given_concurrent_threads_with_different_overlays_then_each_sees_its_own_values() -> None:
    # Given threads that all hold their overlay open at the same moment
    names = [f"fn-{i}" for i in range(4)]
    barrier = threading.Barrier(len(names), timeout=SAFETY_S)
    seen: dict[str, tuple[str | None, str | None]] = {}

    def invoke(name: str) -> None:
        with function_environment({"ENVIRON_TEST_ONLY_IN_FN": name, "ENVIRON_TEST_BASE": f"{name}-base"}):
            barrier.wait()  # every overlay is active now
            first = os.environ.get("ENVIRON_TEST_ONLY_IN_FN")
            barrier.wait()
            seen[name] = (first, os.environ.get("ENVIRON_TEST_BASE"))

    # When
    threads = [threading.Thread(target=invoke, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SAFETY_S)

    # Then
    assert seen == {n: (n, f"{n}-base") for n in names}
    assert os.environ["ENVIRON_TEST_BASE"] == "base"


def test_given_an_overlay_when_a_variable_is_set_inside_then_it_does_not_leak_to_the_base() -> None:
    # When
    with function_environment({}):
        os.environ["ENVIRON_TEST_SET_INSIDE"] = "inside"
        os.environ["ENVIRON_TEST_BASE"] = "changed-inside"
        inside = (os.environ["ENVIRON_TEST_SET_INSIDE"], os.environ["ENVIRON_TEST_BASE"])

    # Then
    assert inside == ("inside", "changed-inside")
    assert "ENVIRON_TEST_SET_INSIDE" not in os.environ
    assert os.environ["ENVIRON_TEST_BASE"] == "base"


def test_given_an_overlay_when_an_overlaid_variable_is_deleted_inside_then_the_base_is_untouched() -> None:
    with function_environment({"ENVIRON_TEST_BASE": "fn"}):
        del os.environ["ENVIRON_TEST_BASE"]
        after_delete = os.environ.get("ENVIRON_TEST_BASE")

    # Inside the function the variable is gone, as in its own container; outside, the process
    # environment was never touched.
    assert after_delete is None
    assert os.environ["ENVIRON_TEST_BASE"] == "base"


def test_given_an_overlay_when_a_base_only_variable_is_deleted_inside_then_the_base_is_untouched() -> None:
    try:
        with function_environment({}):
            os.environ.pop("ENVIRON_TEST_BASE", None)

        assert os.environ.get("ENVIRON_TEST_BASE") == "base"
    finally:
        os.environ["ENVIRON_TEST_BASE"] = "base"  # monkeypatch restores it at teardown either way


def test_given_nested_overlays_when_the_inner_exits_then_the_outer_is_restored() -> None:
    with function_environment({"ENVIRON_TEST_ONLY_IN_FN": "outer"}):
        with function_environment({"ENVIRON_TEST_ONLY_IN_FN": "inner"}):
            inner = os.environ["ENVIRON_TEST_ONLY_IN_FN"]
        outer = os.environ["ENVIRON_TEST_ONLY_IN_FN"]

    assert (inner, outer) == ("inner", "outer")


def test_given_no_overlay_when_setting_a_variable_then_it_reaches_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRON_TEST_SET_INSIDE", "process")

    with function_environment({}):
        seen = os.environ.get("ENVIRON_TEST_SET_INSIDE")

    assert seen == "process"
