"""How the report writes numbers: one place, so the HTML, the Markdown and the
recommendation lines print the same figure the same way."""

from __future__ import annotations

import math

from tfsuite.loadtest.results import Mode

__all__ = [
    "fmt_bytes",
    "fmt_error",
    "fmt_load",
    "fmt_ms",
    "fmt_num",
    "fmt_ratio",
    "fmt_rps",
    "fmt_share",
    "fmt_signed_pct",
    "fmt_slo",
    "fmt_target",
    "load_unit",
]

MISSING = "-"


def _bad(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def fmt_num(value: float | None, digits: int = 3) -> str:
    """``digits`` significant figures, no exponent for everyday magnitudes."""
    if _bad(value):
        return MISSING
    assert value is not None
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:,.{decimals}f}"


def fmt_ms(value: float | None) -> str:
    return fmt_num(value, 3)


def fmt_rps(value: float | None) -> str:
    return fmt_num(value, 3)


def fmt_bytes(value: float | None) -> str:
    if _bad(value):
        return MISSING
    assert value is not None
    if value >= 1e6:
        return f"{value / 1e6:.2f} MB"
    return f"{value / 1e3:.1f} kB"


def fmt_share(value: float | None) -> str:
    """0.983 -> '98.3%'; exact 1 -> '100%'."""
    if _bad(value):
        return MISSING
    assert value is not None
    if value == 1.0:
        return "100%"
    return f"{value * 100:.1f}%"


def fmt_signed_pct(ratio: float) -> str:
    """b/a - 1 as '+13%' / '−4%' / '±0%'."""
    pct = ratio * 100
    if abs(pct) < 0.5:
        return "±0%"
    return f"+{pct:.0f}%" if pct > 0 else f"−{abs(pct):.0f}%"


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:.2f}×"


def fmt_error(value: float | None) -> str:
    """A max abs/rel error: '0', '3e-4', '0.12'."""
    if _bad(value):
        return MISSING
    assert value is not None
    if value == 0:
        return "0"
    if abs(value) >= 0.01:
        return f"{value:.2g}"
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def load_unit(mode: Mode) -> str:
    return "clients" if mode == "closed" else "req/s offered"


def fmt_target(value: float | None) -> str:
    """A concurrency, rate or limit as given: '16', '62.5', '40'."""
    if _bad(value):
        return MISSING
    assert value is not None
    return f"{value:g}" if value == round(value, 3) else fmt_num(value, 4)


def fmt_slo(slo_ms: float) -> str:
    """'p99 ≤ 40 ms'."""
    return f"p99 ≤ {fmt_target(slo_ms)} ms"


def fmt_load(mode: Mode, target: float) -> str:
    """'16 clients', '1 client' (closed loop) or '50 req/s offered' (open loop)."""
    unit = "client" if mode == "closed" and target == 1 else load_unit(mode)
    return f"{fmt_target(target)} {unit}"
