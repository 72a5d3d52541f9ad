"""Each detector: true positives found whole, look-alikes rejected, overlaps resolved."""

from __future__ import annotations

import pytest

from backend.dlp import (
    BUILTIN_RULE_IDS,
    CustomRule,
    DlpPolicy,
    InvalidRule,
    Redactor,
    RedactorCache,
    check_custom_rule,
    kind_for_name,
)
from backend.dlp.scan import Scan
from tests.dlp.samples import NEGATIVES, POSITIVES

KINDS = {
    "email": "EMAIL",
    "phone": "PHONE",
    "card": "CARD",
    "iban": "IBAN",
    "ssn": "SSN",
    "ip": "IP",
    "secret": "SECRET",
}
ALL = Redactor.from_policy(DlpPolicy())


def _spans(redactor: Redactor, text: str) -> list[tuple[str, str]]:
    return [(text[s.start : s.end], s.rule) for s in redactor.find(text)]


POS = [(rule, value) for rule, values in POSITIVES.items() for value in values]
NEG = [(rule, value) for rule, values in NEGATIVES.items() for value in values]


@pytest.mark.parametrize(("rule", "value"), POS)
def test_true_positive_alone(rule: str, value: str) -> None:
    only = Redactor.from_policy(DlpPolicy([rule]))
    text = f"Here it is: {value} - thanks."
    assert _spans(only, text) == [(value, rule)]


@pytest.mark.parametrize(("rule", "value"), POS)
def test_true_positive_with_every_rule_on(rule: str, value: str) -> None:
    text = f"Here it is: {value} - thanks."
    spans = ALL.find(text)
    assert [(text[s.start : s.end], s.rule, s.kind) for s in spans] == [(value, rule, KINDS[rule])]


@pytest.mark.parametrize(("rule", "value"), POS)
def test_true_positive_at_text_edges(rule: str, value: str) -> None:
    assert _spans(ALL, value) == [(value, rule)]


@pytest.mark.parametrize(("rule", "value"), NEG)
def test_look_alike_rejected(rule: str, value: str) -> None:
    only = Redactor.from_policy(DlpPolicy([rule]))
    assert _spans(only, f"Here it is: {value} - thanks.") == []


def test_phone_found_next_to_other_numbers() -> None:
    only = Redactor.from_policy(DlpPolicy(["phone"]))
    text = "in 2024 212 555 1234, or 212-555-1234 415-555-2671"
    assert [v for v, _ in _spans(only, text)] == ["212 555 1234", "212-555-1234", "415-555-2671"]


def test_phone_with_letters_glued_is_not_a_phone() -> None:
    only = Redactor.from_policy(DlpPolicy(["phone"]))
    assert _spans(only, "order x2125551234 and v.2125551234") == []


def test_card_found_inside_a_longer_digit_run() -> None:
    only = Redactor.from_policy(DlpPolicy(["card"]))
    assert _spans(only, "ref 1 4111111111111111") == [("4111111111111111", "card")]
    assert _spans(only, "4111 1111 1111 1111 2024") == [("4111 1111 1111 1111", "card")]


def test_iban_list_and_trailing_words() -> None:
    only = Redactor.from_policy(DlpPolicy(["iban"]))
    text = "DE89 3704 0044 0532 0130 00 GB82 WEST 1234 5698 7654 32 IS MINE"
    assert [v for v, _ in _spans(only, text)] == [
        "DE89 3704 0044 0532 0130 00",
        "GB82 WEST 1234 5698 7654 32",
    ]


def test_bare_ssn_needs_context() -> None:
    only = Redactor.from_policy(DlpPolicy(["ssn"]))
    assert _spans(only, "my SSN: 123456789") == [("123456789", "ssn")]
    assert _spans(only, "Social Security number is 078051120.") == [("078051120", "ssn")]
    assert _spans(only, "order 123456789") == []


def test_aws_secret_access_key_value_only() -> None:
    text = 'aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"'
    assert _spans(ALL, text) == [("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "secret")]


def test_unterminated_private_key_is_still_redacted() -> None:
    text = "key:\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nabcd"
    (found,) = _spans(ALL, text)
    assert found[0].startswith("-----BEGIN PRIVATE KEY-----") and found[0].endswith("abcd")


def test_digits_that_are_not_ascii_do_not_crash() -> None:
    assert _spans(ALL, "٤١١١ ١١١١ ١١١١ ١١١١ and ４１１１１１１１１１１１１１１１") == []


def test_overlap_longest_wins_each_span_once() -> None:
    # The phone number inside the email address is part of the (longer) email.
    text = "write to 2125551234@example.com"
    assert _spans(ALL, text) == [("2125551234@example.com", "email")]
    # A card number also reads as shorter phone-like pieces: one CARD span.
    text = "card 4111 1111 1111 1111"
    assert _spans(ALL, text) == [("4111 1111 1111 1111", "card")]


def test_partial_overlap_is_redacted_as_the_union() -> None:
    r = Redactor.from_policy(DlpPolicy([], [("first", r"foo bar"), ("second", r"bar baz!")]))
    spans = r.find("x foo bar baz! y")
    assert [(s.start, s.end, s.rule) for s in spans] == [(2, 14, "custom:second")]


def test_same_length_tie_goes_to_the_most_specific() -> None:
    r = Redactor.from_policy(DlpPolicy(["card"], [("digits", r"\d{16}")]))
    assert [s.rule for s in r.find("4111111111111111")] == ["card"]


def test_custom_rule_kind_and_value_group() -> None:
    r = Redactor.from_policy(
        DlpPolicy(
            [],
            [
                CustomRule("Employee id", r"EMP-\d{6}"),
                ("project code", r"project=(?P<value>[A-Z]{3}\d{2})"),
            ],
        )
    )
    spans = r.find("EMP-123456 with project=ABC12 and EMP-1")
    text = "EMP-123456 with project=ABC12 and EMP-1"
    assert [(text[s.start : s.end], s.rule, s.kind) for s in spans] == [
        ("EMP-123456", "custom:Employee id", "EMPLOYEE_ID"),
        ("ABC12", "custom:project code", "PROJECT_CODE"),
    ]


@pytest.mark.parametrize(
    ("name", "kind"),
    [("employee id", "EMPLOYEE_ID"), ("Café-No.", "CAF_NO"), ("x", "X"), ("a--b", "A_B")],
)
def test_kind_for_name(name: str, kind: str) -> None:
    assert kind_for_name(name) == kind


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (DlpPolicy([], [("bad", "(unclosed")]), "custom rule 'bad': invalid regex"),
        (DlpPolicy([], [("empty", "")]), "the pattern is empty"),
        (DlpPolicy([], [("star", "a*")]), "matches the empty string"),
        (DlpPolicy([], [("", "abc")]), "needs a name"),
        (DlpPolicy([], [("!!!", "abc")]), "has no letters or digits"),
        (DlpPolicy([], [("a", "x"), ("a", "y")]), "unique"),
        (DlpPolicy(["email", "passport"]), "unknown DLP rule 'passport'"),
        (DlpPolicy(["custom:nope"]), "unknown DLP rule 'custom:nope'"),
    ],
)
def test_invalid_policies_raise_invalid_rule(policy: DlpPolicy, message: str) -> None:
    with pytest.raises(InvalidRule) as info:
        Redactor.from_policy(policy)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_custom_rule_id_may_be_listed_in_rules() -> None:
    r = Redactor.from_policy(DlpPolicy(["email", "custom:emp"], [("emp", r"EMP-\d+")]))
    assert r.rule_ids == ("email", "custom:emp")


def test_policy_is_hashable_and_cache_reuses_compiled_redactors() -> None:
    a = DlpPolicy(["email", "card"], [("emp", r"EMP-\d+")])
    b = DlpPolicy(("card", "email"), [CustomRule("emp", r"EMP-\d+")])
    assert a == b and hash(a) == hash(b)
    cache = RedactorCache(maxsize=2)
    assert cache.get(a) is cache.get(b)
    cache.get(DlpPolicy(["ip"]))
    cache.get(DlpPolicy(["ssn"]))
    assert cache.get(a) is not cache.get(DlpPolicy(["ssn"]))
    assert DlpPolicy().rules == BUILTIN_RULE_IDS


def test_digit_windows_cover_every_digit_cluster() -> None:
    text = "a" * 900 + "4111 1111 1111 1111" + "b" * 900 + "12" + "c" * 900 + " 10.0.0.1"
    windows = Scan(text).digit_windows()
    assert len(windows) == 2  # "12" alone can hold no digit-made value
    assert "4111 1111 1111 1111" in text[slice(*windows[0])]
    assert "10.0.0.1" in text[slice(*windows[1])]
    assert [s.rule for s in ALL.find(text)] == ["card", "ip"]
    assert Scan("no digits here").digit_windows() == []
    dense = "1 2 3 4 5 6 7 8 9 " * 20
    assert Scan(dense).digit_windows() == [(0, len(dense))]


def test_check_custom_rule_for_the_admin_api() -> None:
    check_custom_rule("Employee id", r"EMP-\d{6}")
    with pytest.raises(InvalidRule, match=r"custom rule 'x': invalid regex: missing \)"):
        check_custom_rule("x", "(a")
    with pytest.raises(InvalidRule, match="needs a name"):
        check_custom_rule(" ", "abc")


def test_decimals_of_a_number_are_not_phones_or_cards() -> None:
    text = "gamma = 0.5772156649, x = 1.9468822170900693, y = 3.14 2125551234"
    assert _spans(ALL, text) == [("2125551234", "phone")]


def test_phone_after_a_digit_glued_to_a_word_is_still_found() -> None:
    """A run like "ID_1 (212) 555-1234" starts with "1", glued to a word, so the run used to be
    skipped whole and the phone number after it went out raw."""
    only = Redactor.from_policy(DlpPolicy(["phone"]))
    for text in ("[SECRET_1 (212) 555-1234", "ID_1 212-555-1234 then", "v2.1 +1 415 555 2671"):
        assert [rule for _, rule in _spans(only, text)] == ["phone"], text
    assert _spans(only, "ID_2125551234") == []
