"""Health-professional identifiers: the RPPS number's Luhn key (IDNPS = "8" + RPPS)."""

from __future__ import annotations


def luhn_valid(digits: str) -> bool:
    """The Luhn check the RPPS key uses (the last digit makes the weighted sum a multiple of 10)."""
    if not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0
