"""Least squares for the memory formula (bench/fit.py)."""

from __future__ import annotations

import pytest

from bench.fit import least_squares


def test_recovers_the_coefficients_of_an_exact_linear_cost() -> None:
    # Given cases whose cost is exactly 300 + 1.5 per body byte + 200 per handler
    rows = [[1.0, body, handlers] for body, handlers in [(400, 1), (400, 2), (1300, 2), (4000, 5), (1300, 1)]]
    values = [300 + 1.5 * row[1] + 200 * row[2] for row in rows]

    # When the model is fitted
    fit = least_squares(("per event", "per body byte", "per handler"), rows, values)

    # Then the coefficients come back and every case sits on the model
    assert fit.coefficients == pytest.approx((300.0, 1.5, 200.0))
    assert fit.max_abs_residual == pytest.approx(0.0, abs=1e-6)
    assert fit.predict([1.0, 1000.0, 3.0]) == pytest.approx(2400.0)


def test_residuals_are_measured_minus_fitted() -> None:
    rows = [[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]]

    fit = least_squares(("a", "b"), rows, [0.0, 2.0, 1.0])

    assert fit.coefficients == pytest.approx((0.5, 0.5))
    assert fit.residuals == pytest.approx((-0.5, 1.0, -0.5))


def test_refuses_terms_the_cases_do_not_vary() -> None:
    # Every case has 2 handlers: the constant and the per-handler cost cannot be told apart
    rows = [[1.0, 400.0, 2.0], [1.0, 1300.0, 2.0], [1.0, 4000.0, 2.0]]

    with pytest.raises(ValueError, match="not independent"):
        least_squares(("per event", "per body byte", "per handler"), rows, [1.0, 2.0, 3.0])


def test_refuses_fewer_cases_than_terms() -> None:
    with pytest.raises(ValueError, match="at least 2 cases"):
        least_squares(("a", "b"), [[1.0, 2.0]], [3.0])
