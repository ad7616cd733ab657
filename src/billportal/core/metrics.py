"""Prometheus metrics: what operators graph and alert on (served by ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SIGN_INS = Counter("billportal_sign_ins", "Sign-in attempts by result and reason code", ["result", "reason"])
LATENCY = Histogram(
    "billportal_request_seconds",
    "Time to answer a request, by kind of route",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
RESPONSES = Counter("billportal_responses", "Responses by kind of route and status class", ["route", "status"])
SHED = Counter(
    "billportal_requests_shed",
    "Requests answered 503 at once, the process overloaded: in_flight (too many in progress), latency (behind)",
    ["reason"],
)
DATABASE_UP = Gauge("billportal_database_up", "1 if the database answered the last check", multiprocess_mode="min")
REDIS_UP = Gauge(
    "billportal_redis_up", "1 if Redis answered the last check (absent: not configured)", multiprocess_mode="min"
)
PASSWORD_CHECKS = Counter(
    "billportal_password_checks", "Admin passwords checked with argon2 (the decoy hash included), by result", ["result"]
)
POOL_IN_USE = Gauge("billportal_database_pool_in_use", "Database connections checked out", multiprocess_mode="sum")


def count_sign_in(result: str, reason: str) -> None:
    """One sign-in attempt, by its result and reason code (a fixed set of labels)."""
    SIGN_INS.labels(result, reason).inc()
