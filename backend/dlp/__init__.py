"""DLP: reversible placeholders for sensitive values. Pure, I/O-free.

Typical use on the hot path::

    redactor = cache.get(policy)                    # RedactorCache owned by the app state
    req, vault, findings = redact_request(req, redactor)   # may raise DlpFailure (fail closed)
    ...send req upstream...
    resp = restore_response(resp, vault)            # or, streaming:
    restorer = StreamRestorer(vault)
    for ev in upstream_events: yield from restorer.feed(ev)
    vault.findings(), vault.restore_findings()      # -> activity rows (rule, count), no values

Modules: ``rules`` (catalog, ``DlpPolicy``, custom rules compiled with RE2), ``detectors``
(one per built-in rule), ``custom`` (a custom rule's windowed RE2 search), ``scan`` (one text's
shared facts and its deadline), ``fields`` (which strings of a request's free-form JSON are
text), ``redact`` (``Redactor`` and request redaction), ``vault``, ``restore``, ``errors``
(``DlpFailure``, ``DlpTimeout``, ``DlpScanLost``), ``runner`` (``ScanRunner``: inline, in a
thread or in a scan process, under a time bound), ``pool`` (``ScanProcesses``, the gateway's
scan processes) and ``worker`` (what runs inside them).
"""

from backend.dlp.detectors import Detector, Span
from backend.dlp.redact import (
    DlpFailure,
    DlpTimeout,
    Redactor,
    RedactorCache,
    redact_embeddings,
    redact_request,
    redact_text,
)
from backend.dlp.restore import StreamRestorer, restore_response, restore_text
from backend.dlp.rules import (
    BUILTIN_RULE_IDS,
    BUILTIN_RULES,
    CustomRule,
    DlpPolicy,
    InvalidRule,
    RuleInfo,
    check_custom_rule,
    kind_for_name,
)
from backend.dlp.vault import Finding, Vault

__all__ = [
    "BUILTIN_RULES",
    "BUILTIN_RULE_IDS",
    "CustomRule",
    "Detector",
    "DlpFailure",
    "DlpPolicy",
    "DlpTimeout",
    "Finding",
    "InvalidRule",
    "Redactor",
    "RedactorCache",
    "RuleInfo",
    "Span",
    "StreamRestorer",
    "Vault",
    "check_custom_rule",
    "kind_for_name",
    "redact_embeddings",
    "redact_request",
    "redact_text",
    "restore_response",
    "restore_text",
]
