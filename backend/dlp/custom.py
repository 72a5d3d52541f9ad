"""The detector of a policy's custom rule: an administrator's RE2 pattern, searched in bounded
windows so that neither a pattern nor a body can make one scan step long."""

from __future__ import annotations

from backend.dlp.detectors import PRIORITY, Spans
from backend.dlp.rules import CustomRule, compile_custom_pattern
from backend.dlp.scan import Scan


class CustomDetector:
    """A policy's named regex; with a ``(?P<value>...)`` group only that part is redacted.

    The pattern is an RE2 one (linear time per search), but ``finditer`` over a whole text can
    still be quadratic: each match may scan to the end of the text before settling
    (``x(?:.*y)?`` over "xxx..."), and one RE2 call cannot be interrupted. So the text is
    searched in windows of ``WINDOW`` characters plus ``MAX_MATCH`` of overlap, with one
    character of context on each side (RE2 honours it for ``^``, ``$`` and ``\\b``), and the
    deadline is checked after every match: each uninterruptible step is bounded by the window,
    not by the body. A match is therefore found whole when it is at most ``MAX_MATCH``
    characters long; a longer one is redacted up to there.
    """

    priority = PRIORITY["custom"]
    WINDOW = 32 * 1024
    MAX_MATCH = 2048

    def __init__(
        self, rule: CustomRule, *, window: int = WINDOW, max_match: int = MAX_MATCH
    ) -> None:
        self.rule_id = rule.rule_id
        self.kind = rule.kind
        self._pattern = compile_custom_pattern(rule)
        self._group: int = self._pattern.groupindex.get("value", 0)
        self._window = window
        self._max_match = max_match

    def spans(self, scan: Scan) -> Spans:
        out: Spans = []
        text = scan.text
        n = len(text)
        start = 0  # where the next match may begin (matches never overlap, as in finditer)
        while start < n:
            scan.check()
            stop = min(n, start + self._window)  # matches must begin before this
            base = max(0, start - 1)
            limit = min(n, stop + self._max_match)
            window = text[base : min(n, limit + 1)]
            for m in self._pattern.finditer(window, start - base, limit - base):
                if base + m.start() >= stop:
                    break
                s, e = m.span(self._group)
                if e > s:
                    out.append((base + s, base + e))
                start = max(start, base + m.end())
                scan.check()
            start = max(start, stop)
        return out
