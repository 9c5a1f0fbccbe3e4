"""How the KD term mixes with the gold NLL: lambda by epoch
(``L = lambda L_KD + (1 - lambda) L_NLL``, ``distill.lambda_schedule``)."""

from __future__ import annotations

SCHEDULES = ("paper", "constant", "linear")


def kd_weight(schedule: str, epoch: int, num_epochs: int, value: float = 0.9) -> float:
    """lambda in ``L = lambda L_KD + (1 - lambda) L_NLL`` for a 0-based epoch.

    * ``paper``: 1 for every epoch but the last, 0 in the last (Lin et al.).
    * ``constant``: ``value`` every epoch (the official code used 0.9).
    * ``linear``: from 1 at the first epoch to 0 at the last.
    """
    if schedule == "paper":
        return 0.0 if epoch >= num_epochs - 1 else 1.0
    if schedule == "constant":
        return float(value)
    if schedule == "linear":
        return 1.0 if num_epochs <= 1 else 1.0 - epoch / (num_epochs - 1)
    raise ValueError(f"lambda schedule must be one of {SCHEDULES}; got {schedule!r}")
