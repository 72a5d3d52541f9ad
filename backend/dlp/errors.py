"""The ways a DLP scan refuses a request instead of sending it unscanned (fail closed)."""

from __future__ import annotations

from backend.ir.errors import PolicyBlocked


class DlpFailure(PolicyBlocked):
    """A detector failed, so the request is refused rather than sent unscanned (fail closed)."""

    def __init__(self, rule: str, message: str | None = None) -> None:
        super().__init__(
            message
            or f"The request was refused: DLP could not scan it (the {rule!r} detector failed).",
            code="dlp_failure",
            detail={"rule": rule},
        )
        self.rule = rule


class DlpTimeout(DlpFailure):
    """The scan did not finish within its time bound: refused with 503, nothing sent upstream.

    503 rather than 413: the body is within the size limit, and whether it can be scanned in
    time depends on the gateway's load as much as on the body (a retry later may pass).
    """

    status = 503

    def __init__(self, timeout_s: float | None = None) -> None:
        bound = f" within {timeout_s:g} s" if timeout_s is not None else " in time"
        super().__init__(
            "*",
            "The request was refused: DLP could not scan it"
            f"{bound} (the body is too large or the gateway is busy). "
            "Nothing was sent to the provider; send a smaller request or retry later.",
        )
        self.code = "dlp_timeout"


class DlpScanLost(DlpFailure):
    """The process scanning the request died (killed, out of memory): refused with 503, nothing
    sent upstream; the gateway starts a new scan process, so a retry can pass."""

    status = 503

    def __init__(self) -> None:
        super().__init__(
            "*",
            "The request was refused: the DLP scanner stopped while scanning it. Nothing was "
            "sent to the provider; the scanner was restarted, retry the request.",
        )
        self.code = "dlp_unavailable"
