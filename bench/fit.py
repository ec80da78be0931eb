"""Ordinary least squares for a handful of measured cases: the coefficients of a linear cost model (bytes per event
as a constant, a cost per body byte, per handler, …) and how far each case is from it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Fit", "least_squares"]


@dataclass(frozen=True, slots=True)
class Fit:
    """`value ≈ Σ coefficient * term`, fitted to the measured cases; residuals are measured minus fitted."""

    terms: tuple[str, ...]
    coefficients: tuple[float, ...]
    residuals: tuple[float, ...]

    def predict(self, row: Sequence[float]) -> float:
        return sum(c * x for c, x in zip(self.coefficients, row, strict=True))

    @property
    def max_abs_residual(self) -> float:
        return max((abs(r) for r in self.residuals), default=0.0)


def least_squares(terms: Sequence[str], rows: Sequence[Sequence[float]], values: Sequence[float]) -> Fit:
    """Fit `values[i] ≈ Σ_j b_j * rows[i][j]`; needs at least as many cases as terms, and independent columns."""
    width = len(terms)
    if len(rows) != len(values) or len(rows) < width:
        raise ValueError(f"need at least {width} cases with one value each, got {len(rows)} and {len(values)}")
    if any(len(row) != width for row in rows):
        raise ValueError(f"every row needs {width} terms")
    # Columns scaled to a largest magnitude of 1 first: a body size in bytes and a 0/1 constant differ by 10^4,
    # which the normal equations would square.
    scale = [max(abs(row[j]) for row in rows) or 1.0 for j in range(width)]
    scaled = [[row[j] / scale[j] for j in range(width)] for row in rows]
    normal = [[sum(r[i] * r[j] for r in scaled) for j in range(width)] for i in range(width)]
    rhs = [sum(r[i] * v for r, v in zip(scaled, values, strict=True)) for i in range(width)]
    solution = _solve(normal, rhs)
    coefficients = tuple(s / k for s, k in zip(solution, scale, strict=True))
    residuals = tuple(
        v - sum(c * x for c, x in zip(coefficients, row, strict=True)) for row, v in zip(rows, values, strict=True)
    )
    return Fit(tuple(terms), coefficients, residuals)


def _solve(matrix: list[list[float]], rhs: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (the matrix is small: one row per term)."""
    n = len(rhs)
    a = [[*row, b] for row, b in zip(matrix, rhs, strict=True)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        if abs(a[pivot][col]) < 1e-12:
            raise ValueError("the terms are not independent over these cases: vary each one")
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(col + 1, n):
            factor = a[r][col] / a[col][col]
            for c in range(col, n + 1):
                a[r][c] -= factor * a[col][c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (a[r][n] - sum(a[r][c] * x[c] for c in range(r + 1, n))) / a[r][r]
    return x
