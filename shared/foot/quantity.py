"""Kubernetes resource quantities ("500m", "4", "8Gi", "1.5G", "2e3") as exact numbers.

Quantities are parsed into `Fraction`s so nothing is lost to floating point,
and turned into integer *milli-units* for arithmetic in hot paths: CPU in
millicores, memory in thousandths of a byte, pods in thousandths of a pod. A
single integer unit keeps "how many replicas fit" a floor division of ints.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

_BINARY_SUFFIXES = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_DECIMAL_SUFFIXES = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
_QUANTITY = re.compile(
    r"^(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:(?P<exponent>[eE][+-]?[0-9]+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?))$"
)
MILLI = 1000


class QuantityError(ValueError):
    """The text is not a Kubernetes quantity."""


def parse_quantity(value: str | int | float) -> Fraction:
    """The exact value of a quantity in base units (cores, bytes, pods)."""
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(f"{value!r} is not a finite quantity")
        return Fraction(str(value))
    match = _QUANTITY.match(value.strip())
    if match is None:
        raise QuantityError(
            f"{value!r} is not a quantity (a number with an optional suffix such as "
            "500m, 2, 1.5Gi, 8G or 1e3)"
        )
    number = Fraction(match["number"])
    if match["sign"] == "-":
        number = -number
    if match["exponent"]:
        return number * Fraction(10) ** int(match["exponent"][1:])
    suffix = match["suffix"] or ""
    if suffix in _BINARY_SUFFIXES:
        return number * _BINARY_SUFFIXES[suffix]
    return number * _DECIMAL_SUFFIXES[suffix]


def milli_value(value: str | int | float) -> int:
    """The quantity in thousandths of its base unit, rounded up (as Kubernetes rounds requests)."""
    return math.ceil(parse_quantity(value) * MILLI)


def is_quantity(value: object) -> bool:
    try:
        parse_quantity(value)  # type: ignore[arg-type]
    except (QuantityError, TypeError, AttributeError):
        return False
    return True


def check_quantity(value: str) -> str:
    """Pydantic validator body: accept a quantity string, refuse anything else clearly."""
    parse_quantity(value)
    return value


def format_milli(milli: int, resource: str) -> str:
    """A readable quantity for messages: `cpu` in m/cores, memory in Mi/Gi, others plain."""
    if resource == "cpu":
        return f"{milli}m" if milli % MILLI else str(milli // MILLI)
    if resource in {"memory", "ephemeral-storage"} or resource.startswith("hugepages-"):
        units = milli // MILLI
        for suffix in ("Ti", "Gi", "Mi", "Ki"):
            size = _BINARY_SUFFIXES[suffix]
            if units >= size and units % size == 0:
                return f"{units // size}{suffix}"
        return str(units)
    if milli % MILLI:
        return f"{milli}m"
    return str(milli // MILLI)
