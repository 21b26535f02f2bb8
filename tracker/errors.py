"""Errors raised by services. The API turns them into 4xx JSON naming the field and reason."""

from __future__ import annotations

from dataclasses import dataclass, field


class ServiceError(Exception):
    """Bad input for a service: `field` names what was wrong, `message` says why."""

    status_code = 400

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def as_dict(self) -> dict[str, object]:
        return {self.field: [self.message]}


class ConflictError(ServiceError):
    """The request conflicts with what is already recorded (HTTP 409)."""

    status_code = 409


@dataclass(frozen=True)
class SafetyWarning:
    """A RULES safety warning the client must acknowledge before the write happens."""

    code: str
    message: str
    rule: str = ""
    details: dict[str, object] = field(default_factory=dict)
    # RULES §4 "Hard-stop warning; override requires a reason": acknowledging the code is not enough.
    hard_stop: bool = False


class WarningsNotAcknowledged(ServiceError):
    """Raised when safety warnings apply and the request did not list them in `acknowledge`."""

    def __init__(self, warnings: list[SafetyWarning]) -> None:
        codes = ", ".join(w.code for w in warnings)
        super().__init__("acknowledge", f"These warnings must be acknowledged to proceed: {codes}.")
        self.warnings = warnings

    def as_dict(self) -> dict[str, object]:
        return {
            "acknowledge": [self.message],
            "warnings": [
                {"code": w.code, "rule": w.rule, "message": w.message, "details": w.details}
                for w in self.warnings
            ],
        }


def require_acknowledged(warnings: list[SafetyWarning], acknowledge: list[str] | None) -> list[str]:
    """Raise unless every warning's code is in `acknowledge`; return the acknowledged codes."""
    given = set(acknowledge or [])
    missing = [w for w in warnings if w.code not in given]
    if missing:
        raise WarningsNotAcknowledged(missing)
    return sorted({w.code for w in warnings})


def require_override_reason(
    warnings: list[SafetyWarning], acknowledged: list[str], override_reason: str, *, field: str = "override_reason"
) -> str:
    """RULES §4 "Hard-stop warning; override requires a reason": an acknowledged hard stop needs a reason.
    Returns the reason, stripped. `field` names where the request gives it (a stop's own `reason` for S-5)."""
    reason = (override_reason or "").strip()
    hard = sorted({w.code for w in warnings if w.hard_stop} & set(acknowledged))
    if hard and not reason:
        raise ServiceError(field, f"a hard-stop warning ({', '.join(hard)}) needs a reason to override")
    minimum = _reason_min_length()
    if hard and len(reason) < minimum:
        raise ServiceError(
            field,
            f"say why the hard stop ({', '.join(hard)}) is overridden in at least {minimum} characters",
        )
    return reason


def _reason_min_length() -> int:
    from django.conf import settings

    return int(settings.COBALT.get("OVERRIDE_REASON_MIN_LENGTH", 1))
