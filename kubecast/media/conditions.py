"""Conditions in the shape of metav1.Condition: the timeline carries them, the operator copies them."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def set_condition(
    conditions: list[dict[str, Any]], type_: str, status: bool | None, reason: str, message: str, now: datetime
) -> None:
    """Upsert by type; lastTransitionTime moves only when the status changes."""
    value = "Unknown" if status is None else ("True" if status else "False")
    for condition in conditions:
        if condition["type"] == type_:
            if condition["status"] != value:
                condition["lastTransitionTime"] = now.isoformat().replace("+00:00", "Z")
            condition.update(status=value, reason=reason, message=message)
            return
    conditions.append(
        {
            "type": type_,
            "status": value,
            "reason": reason,
            "message": message,
            "lastTransitionTime": now.isoformat().replace("+00:00", "Z"),
        }
    )
