"""The queueing formulas capacity planning rests on (Erlang B and C, M/M/c waits, the
workers a target needs), checked against exact values and the closed forms."""

from __future__ import annotations

import math
import random

import pytest

from docworker.jobs.capacity import (
    attempts_of,
    erlang_b,
    erlang_c,
    mean_wait,
    percentile,
    slope,
    wait_exceeds,
    wait_percentile,
    workers_for,
)
from docworker.jobs.capacity_history import (
    BUCKETS,
    EDGES,
    ERROR_FACTOR,
    bucket_of,
    histogram_percentile,
)


def erlang_c_closed_form(servers: int, load: float) -> float:
    """C(c, a) = (a^c/c! · c/(c−a)) / (Σ_{k<c} a^k/k! + a^c/c! · c/(c−a))."""
    top = load**servers / math.factorial(servers) * servers / (servers - load)
    return top / (sum(load**k / math.factorial(k) for k in range(servers)) + top)


def test_erlang_b_and_c_give_the_exact_values() -> None:
    # a = 2 erlangs on 3 servers: B = 4/19, C = 4/9.
    assert erlang_b(3, 2.0) == pytest.approx(4 / 19)
    assert erlang_c(3, 2.0) == pytest.approx(4 / 9)
    # One server: M/M/1, a job waits with the probability of the utilisation.
    assert erlang_c(1, 0.7) == pytest.approx(0.7)
    # The classic table value: 10 erlangs on 11 servers, 68.2 % of the calls wait.
    assert erlang_c(11, 10.0) == pytest.approx(0.6821, abs=5e-5)


@pytest.mark.parametrize(
    ("servers", "load"), [(2, 1.5), (5, 4.2), (12, 9.0), (30, 27.5), (60, 41.0), (100, 99.9)]
)
def test_erlang_c_matches_the_closed_form(servers: int, load: float) -> None:
    assert erlang_c(servers, load) == pytest.approx(erlang_c_closed_form(servers, load), rel=1e-9)


def test_erlang_c_of_an_overloaded_or_idle_queue() -> None:
    assert erlang_c(3, 3.0) == 1.0 and erlang_c(3, 5.0) == 1.0
    assert erlang_c(3, 0.0) == 0.0
    assert erlang_c(0, 0.5) == 1.0
    # Large pools stay finite (the recursion, not factorials).
    assert 0.0 < erlang_c(2000, 1990.0) < 1.0


def test_mm1_waits() -> None:
    # ρ = 0.5, S = 2 s: Wq = ρS/(1−ρ) = 2 s; P(W > t) = ρ·exp(−(1−ρ)t/S).
    assert mean_wait(1, 0.5, 2.0) == pytest.approx(2.0)
    assert wait_exceeds(1, 0.5, 2.0, 4.0) == pytest.approx(0.5 * math.exp(-1.0))
    # The 90th percentile: ρ·exp(−(1−ρ)t/S) = 0.1 → t = S·ln(ρ/0.1)/(1−ρ).
    assert wait_percentile(1, 0.5, 2.0, 90) == pytest.approx(2.0 * math.log(5.0) / 0.5)
    # Below the share that waits at all, the percentile is no wait.
    assert wait_percentile(1, 0.5, 2.0, 50) == 0.0
    assert math.isinf(mean_wait(2, 2.0, 1.0)) and math.isinf(wait_percentile(2, 2.5, 1.0, 95))


def test_workers_for_a_target_wait() -> None:
    # a = 2: C(3, 2) = 0.444 ≤ 0.5, C(2, 2) = 1: three workers keep the median wait at 0.
    assert workers_for(2.0, 7.0, 0.0, 50, 100) == 3
    # Each answer is the fewest that meet the target: one fewer would not.
    cases = [(10.0, 30.0, 20.0, 80), (24.0, 240.0, 15.0, 95), (0.3, 5.0, 1.0, 99)]
    for load, service, wait, pct in cases:
        servers = workers_for(load, service, wait, pct, 1000)
        assert servers is not None and servers > load
        tail = 1 - pct / 100
        assert wait_exceeds(servers, load, service, wait) <= tail
        assert servers - 1 <= load or wait_exceeds(servers - 1, load, service, wait) > tail
    assert workers_for(0.0, 3.0, 1.0, 95, 10) == 0
    assert workers_for(50.0, 3.0, 1.0, 95, 10) is None


def test_percentile_interpolates_as_percentile_cont() -> None:
    values = [2.0, 4.0, 6.0, 8.0, 10.0, 12.0]
    assert percentile(values, 50) == pytest.approx(7.0)
    assert percentile(values, 95) == pytest.approx(11.5)
    assert percentile([3.0], 95) == 3.0
    assert percentile([], 50) is None


def test_slope_is_least_squares() -> None:
    assert slope([(0, 1.0), (1, 3.0), (2, 5.0)]) == pytest.approx(2.0)
    assert slope([(0, 1.0), (1, 2.0), (2, 0.0)]) == pytest.approx(-0.5)
    assert slope([(0, 1.0)]) is None


def test_a_row_s_service_time_sums_its_attempts() -> None:
    history = [
        {"started_at": "2026-01-01T10:00:05+00:00", "ended_at": "2026-01-01T10:00:08+00:00"},
        {"started_at": "2026-01-01T10:01:00+00:00", "ended_at": "2026-01-01T10:01:05.500000+00:00"},
    ]
    busy, first = attempts_of(history, None, None)
    assert busy == pytest.approx(8.5)
    assert first is not None and first.isoformat() == "2026-01-01T10:00:05+00:00"


# -- the histograms of the capacity history -------------------------------------------------


def test_buckets_are_log_spaced_and_their_edges_decide() -> None:
    assert [bucket_of(v) for v in (0.0, 0.0099, 0.01, 0.0142, 0.0141)] == [0, 0, 1, 2, 1]
    for index, edge in enumerate(EDGES):
        assert bucket_of(edge) == index + 1
        assert bucket_of(edge * (1 - 1e-9)) == index
    assert bucket_of(1e9) == BUCKETS - 1
    assert EDGES[-1] == pytest.approx(83886.08)


def test_percentiles_from_the_histogram_are_within_the_bound() -> None:
    generator = random.Random(7)
    for sigma in (0.2, 1.0, 2.5):
        values = sorted(generator.lognormvariate(1.0, sigma) for _ in range(2000))
        counts = [0] * BUCKETS
        for value in values:
            counts[bucket_of(value)] += 1
        for q in (5, 50, 90, 95, 99):
            exact = percentile(values, q)
            estimate = histogram_percentile(counts, q)
            assert exact is not None and estimate is not None
            assert exact / ERROR_FACTOR <= estimate <= exact * ERROR_FACTOR, (sigma, q)
    assert histogram_percentile([0] * BUCKETS, 50) is None
    # Under 0.01 s: within 0.005 s; past the last edge: its edge, a lower bound.
    assert histogram_percentile([3] + [0] * (BUCKETS - 1), 50) == pytest.approx(0.005)
    assert histogram_percentile([0] * (BUCKETS - 1) + [1], 50) == EDGES[-1]
