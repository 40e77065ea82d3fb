"""Choosing a route's target: round robin, smooth weighted round robin, least outstanding requests
and weighted rendezvous (consistent) hashing, each answering an order to fail over along."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from functions.routes.logic.balancer import Balancer, Target

A = Target("https://a.example")
B = Target("https://b.example")
C = Target("https://c.example")
D = Target("https://d.example")


def everything(_: Target) -> bool:
    return True


def urls(order: list[Target]) -> list[str]:
    return [t.url.removeprefix("https://").removesuffix(".example") for t in order]


def test_a_balancer_needs_targets() -> None:
    with pytest.raises(ValueError, match="at least one target"):
        Balancer("r1", [], "round_robin")


# --- round robin -------------------------------------------------------------------------------


def test_round_robin_rotates_and_answers_the_failover_order() -> None:
    balancer = Balancer("r1", [A, B, C], "round_robin")

    orders = [urls(balancer.order("caller", everything)) for _ in range(4)]

    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]


def test_round_robin_ignores_the_caller() -> None:
    balancer = Balancer("r1", [A, B], "round_robin")

    firsts = [balancer.order(f"caller-{i}", everything)[0] for i in range(4)]

    assert firsts == [A, B, A, B]


def test_round_robin_skips_unusable_targets() -> None:
    balancer = Balancer("r1", [A, B, C], "round_robin")

    def not_b(target: Target) -> bool:
        return target is not B

    orders = [urls(balancer.order("caller", not_b)) for _ in range(4)]

    assert orders == [["a", "c"], ["c", "a"], ["a", "c"], ["c", "a"]]


def test_a_single_usable_target_is_the_whole_order() -> None:
    balancer = Balancer("r1", [A, B, C], "round_robin")

    for _ in range(3):
        assert balancer.order("caller", lambda t: t is C) == [C]


@pytest.mark.parametrize("algorithm", ["round_robin", "weighted", "least_outstanding", "consistent_hash"])
def test_no_usable_target_answers_an_empty_order(algorithm: str) -> None:
    balancer = Balancer("r1", [A, B, C], algorithm)

    assert balancer.order("caller", lambda _: False) == []


@pytest.mark.parametrize("algorithm", ["round_robin", "weighted", "least_outstanding", "consistent_hash"])
def test_every_order_holds_each_usable_target_once(algorithm: str) -> None:
    balancer = Balancer("r1", [A, Target(B.url, 3), C, D], algorithm)

    for i in range(20):
        order = balancer.order(f"caller-{i}", lambda t: t is not C)
        assert sorted(t.url for t in order) == sorted([A.url, B.url, D.url])


# --- smooth weighted round robin ---------------------------------------------------------------


def test_weighted_picks_in_exact_proportion_interleaved() -> None:
    heavy, light1, light2 = (
        Target("https://a.example", 5),
        Target("https://b.example", 1),
        Target("https://c.example", 1),
    )
    balancer = Balancer("r1", [heavy, light1, light2], "weighted")

    picks = [urls(balancer.order("caller", everything))[0] for _ in range(21)]

    # nginx's smooth weighted round robin over one cycle of 7: a a b a c a a (never 5 a's in a row).
    assert picks[:7] == ["a", "a", "b", "a", "c", "a", "a"]
    for cycle in range(3):
        assert Counter(picks[cycle * 7 : cycle * 7 + 7]) == {"a": 5, "b": 1, "c": 1}
    assert picks == picks[:7] * 3
    # Within a cycle the light targets split the heavy one's picks; even across cycles no 5 in a row.
    longest_run = max(len(run) for run in "".join(picks).replace("b", " ").replace("c", " ").split())
    assert longest_run < 5


def test_weighted_answers_the_choice_then_the_rest() -> None:
    heavy = Target("https://a.example", 2)
    balancer = Balancer("r1", [heavy, B, C], "weighted")

    orders = [urls(balancer.order("caller", everything)) for _ in range(4)]

    # weights 2,1,1: a b c a, each followed by the others in list order from the choice
    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]


def test_weighted_with_equal_weights_is_round_robin() -> None:
    balancer = Balancer("r1", [A, B, C], "weighted")

    picks = [balancer.order("caller", everything)[0] for _ in range(6)]

    assert picks == [A, B, C, A, B, C]


def test_weighted_keeps_proportions_among_the_usable_targets() -> None:
    a3, b1, c9 = Target("https://a.example", 3), Target("https://b.example", 1), Target("https://c.example", 9)
    balancer = Balancer("r1", [a3, b1, c9], "weighted")

    picks = Counter(urls(balancer.order("caller", lambda t: t is not c9))[0] for _ in range(40))

    assert picks == {"a": 30, "b": 10}


# --- least outstanding requests ----------------------------------------------------------------


def test_least_outstanding_picks_the_target_with_fewest_in_flight() -> None:
    balancer = Balancer("r1", [A, B, C], "least_outstanding")

    with balancer.in_flight(A), balancer.in_flight(A), balancer.in_flight(B):
        assert (balancer.outstanding(A.url), balancer.outstanding(B.url), balancer.outstanding(C.url)) == (2, 1, 0)
        for _ in range(5):
            order = balancer.order("caller", everything)
            assert order[0] == C
            assert sorted(t.url for t in order) == sorted([A.url, B.url, C.url])
        with balancer.in_flight(C), balancer.in_flight(C):
            assert balancer.order("caller", everything)[0] == B

    assert [balancer.outstanding(t.url) for t in (A, B, C)] == [0, 0, 0]


def test_least_outstanding_breaks_ties_by_turn() -> None:
    balancer = Balancer("r1", [A, B, C], "least_outstanding")

    firsts = [balancer.order("caller", everything)[0] for _ in range(6)]

    assert firsts == [A, B, C, A, B, C]


def test_least_outstanding_skips_unusable_targets_even_when_idle() -> None:
    balancer = Balancer("r1", [A, B, C], "least_outstanding")

    with balancer.in_flight(A), balancer.in_flight(B):
        assert balancer.order("caller", lambda t: t is not C)[0] in (A, B)
        assert balancer.outstanding(C.url) == 0


def test_in_flight_is_released_when_the_call_raises() -> None:
    balancer = Balancer("r1", [A, B], "least_outstanding")

    seen_inside: list[int] = []

    def call() -> None:
        with balancer.in_flight(A):
            seen_inside.append(balancer.outstanding(A.url))
            raise RuntimeError("upstream broke")

    with pytest.raises(RuntimeError, match="upstream broke"):
        call()

    assert seen_inside == [1]

    assert balancer.outstanding(A.url) == 0
    assert balancer.outstanding("https://unknown.example") == 0


def test_least_outstanding_counts_requests_held_by_other_threads() -> None:
    balancer = Balancer("r1", [A, B, C], "least_outstanding")
    holding = threading.Barrier(6 + 1)  # 4 threads on A, 2 on B, and this one
    release = threading.Event()
    errors: list[BaseException] = []

    def hold(target: Target) -> None:
        try:
            with balancer.in_flight(target):
                holding.wait(timeout=5)
                if not release.wait(timeout=5):
                    raise TimeoutError("never released")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=hold, args=(t,), daemon=True) for t in [A, A, A, A, B, B]]
    for thread in threads:
        thread.start()
    holding.wait(timeout=5)
    try:
        assert [balancer.outstanding(t.url) for t in (A, B, C)] == [4, 2, 0]
        assert all(balancer.order(f"caller-{i}", everything)[0] == C for i in range(5))
        assert balancer.order("caller", lambda t: t is not C)[0] == B
    finally:
        release.set()
        for thread in threads:
            thread.join(timeout=5)

    assert errors == []
    assert [balancer.outstanding(t.url) for t in (A, B, C)] == [0, 0, 0]


def test_in_flight_counts_stay_exact_under_concurrency() -> None:
    balancer = Balancer("r1", [A, B], "least_outstanding")
    start = threading.Barrier(8)

    def churn() -> None:
        start.wait(timeout=5)
        for _ in range(500):
            with balancer.in_flight(A):
                pass

    threads = [threading.Thread(target=churn, daemon=True) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert balancer.outstanding(A.url) == 0


# --- consistent (rendezvous) hashing -----------------------------------------------------------


def test_consistent_hash_sends_a_caller_to_the_same_target_every_time() -> None:
    targets = [A, B, C, D]
    balancer = Balancer("r1", targets, "consistent_hash")

    for i in range(50):
        caller = f"client-{i}"
        first = balancer.order(caller, everything)
        for _ in range(3):
            assert balancer.order(caller, everything) == first
        # Another container (a new balancer, targets listed in another order) agrees.
        other = Balancer("r1", list(reversed(targets)), "consistent_hash")
        assert other.order(caller, everything) == first


def test_consistent_hash_spreads_callers_across_targets() -> None:
    balancer = Balancer("r1", [A, B, C, D], "consistent_hash")

    firsts = Counter(balancer.order(f"client-{i}", everything)[0].url for i in range(2000))

    assert set(firsts) == {A.url, B.url, C.url, D.url}
    for count in firsts.values():
        assert 400 <= count <= 600  # 500 each expected


def test_consistent_hash_spreads_callers_by_weight() -> None:
    light, heavy = Target("https://light.example", 1), Target("https://heavy.example", 3)
    balancer = Balancer("r1", [light, heavy], "consistent_hash")

    firsts = Counter(balancer.order(f"client-{i}", everything)[0].url for i in range(2000))

    assert firsts[light.url] + firsts[heavy.url] == 2000
    assert 400 <= firsts[light.url] <= 600  # 500 expected
    assert 1400 <= firsts[heavy.url] <= 1600  # 1500 expected


def test_removing_a_target_only_moves_the_callers_that_had_it_first() -> None:
    targets = [A, B, C, D]
    balancer = Balancer("r1", targets, "consistent_hash")
    callers = [f"client-{i}" for i in range(1000)]
    before = {caller: balancer.order(caller, everything) for caller in callers}

    after = {caller: balancer.order(caller, lambda t: t is not C) for caller in callers}

    moved = [caller for caller in callers if after[caller][0] != before[caller][0]]
    assert moved  # some callers had C
    for caller in callers:
        if before[caller][0] == C:
            # They move to their second choice; everyone's ranking of the rest is unchanged.
            assert after[caller][0] == before[caller][1]
        else:
            assert after[caller][0] == before[caller][0]
        assert after[caller] == [t for t in before[caller] if t is not C]
    # The same holds for a balancer built without C (a route edited to drop it).
    shrunk = Balancer("r1", [A, B, D], "consistent_hash")
    assert all(shrunk.order(caller, everything) == after[caller] for caller in callers)


def test_consistent_hash_fails_over_in_the_callers_own_ranking() -> None:
    balancer = Balancer("r1", [A, B, C], "consistent_hash")

    order = balancer.order("client-7", everything)
    survivors = balancer.order("client-7", lambda t: t is not order[0])

    assert survivors == order[1:]
