"""Units of the trade: CMX speaks feet, the API speaks km, miles and steps."""

M_PER_FT = 0.3048
M_PER_MILE = 1609.344
M_PER_KM = 1000.0
MINUTE_S = 60  # counters are kept per minute (epoch seconds // MINUTE_S * MINUTE_S)


def km(distance_m: float) -> float:
    """Metres → kilometres."""
    return distance_m / M_PER_KM


def miles(distance_m: float) -> float:
    """Metres → statute miles."""
    return distance_m / M_PER_MILE


def steps(distance_m: float, step_length_ft: float) -> int:
    """Metres → steps of step_length_ft, rounded (sums of legs carry float error)."""
    return round(distance_m / M_PER_FT / step_length_ft)
