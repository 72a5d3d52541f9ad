"""Sample sensitive values (true positives) and look-alikes (must not be detected), per rule.

Keys are fake or documentation values (AWS's EXAMPLE key, RFC 5737/3849 addresses, issuer
test card numbers, the IBAN registry's examples).
"""

from __future__ import annotations

import base64

import orjson


def b64url(obj: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(obj)).rstrip(b"=").decode()


JWT = (
    b64url({"alg": "HS256", "typ": "JWT"})
    + "."
    + b64url({"sub": "1234567890", "name": "Jane"})
    + ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi3ZV2hNOt0l5dFi7lKXqPmE3Pv\n"
    "Vy3l6f1Kk4bHq+Q0pBNq/2R8bZ0aGm3hF7pX1w==\n"
    "-----END RSA PRIVATE KEY-----"
)

POSITIVES: dict[str, list[str]] = {
    "email": [
        "john.doe@example.com",
        "a.b+tag@mail.example.co.uk",
        "X_Y-z%1@sub-domain.example.org",
        "2125551234@example.com",
    ],
    "phone": [
        "+1 415 555 2671",
        "(212) 555-1234",
        "212-555-1234",
        "2125551234",
        "212.555.1234",
        "1-800-555-1234",
        "+1 (212) 555-1234",
        "+44 20 7946 0958",
        "+33 1 23 45 67 89",
        "+49 30 12345678",
        "+81 3-1234-5678",
    ],
    "card": [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111111111111111",
        "5555555555554444",
        "378282246310005",
        "3782 822463 10005",
        "6011111111111117",
        "4242424242424242",
        "3530111333300000",
        "4222222222222",
    ],
    "iban": [
        "DE89 3704 0044 0532 0130 00",
        "DE89370400440532013000",
        "GB82WEST12345698765432",
        "GB82 WEST 1234 5698 7654 32",
        "FR14 2004 1010 0505 0001 3M02 606",
        "NL91ABNA0417164300",
        "CH9300762011623852957",
        "de89370400440532013000",
    ],
    "ssn": ["123-45-6789", "078-05-1120", "219 09 9999", "457-55-5462"],
    "ip": [
        "192.168.1.10",
        "10.0.0.1",
        "203.0.113.42",
        "2001:db8::1",
        "fe80::1ff:fe23:4567:890a",
        "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
        "::ffff:192.168.1.1",
    ],
    "secret": [
        "sk-proj-Ab3dEf6hIj9kLmN0pQrStUvWxYz12345",
        "sk-ant-api03-abcdefghijklmnop1234567890ABCDEF",
        "sk-1234567890abcdefghijklmnopqrstuvwxyzABCD",
        "AKIAIOSFODNN7EXAMPLE",
        "ASIAIOSFODNN7EXAMPL2",
        "ghp_" + "a1B2c3D4e5" * 3 + "f6G7h8",
        "gho_" + "Z" * 36,
        "ghs_" + "0" * 36,
        "ghu_" + "abc123" * 6,
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "AIzaSyA1234567890abcdefghijklmnopqrstuv",
        "xoxb-123456789012-abcdefABCDEF",
        "xoxp-1234-5678-abcdef",
        JWT,
        PEM,
    ],
}

NEGATIVES: dict[str, list[str]] = {
    "email": ["john@localhost", "a @ b.com", "@example.com", "user@.com", "name@example"],
    "phone": [
        "555-1234",
        "123-456-7890",  # area code 1xx does not exist
        "2024-01-15",
        "1700000000",
        "+1 123 456 7890",
        "12345",
        "212 555 12",
    ],
    "card": [
        "4111 1111 1111 1112",  # Luhn fails
        "4111111111111112",
        "1234567812345678",
        "0000 0000 0000 0000",
        "411111111111",  # too short
        "41111111111111111111",  # too long
        "4111 11 11 1111 1111",  # not a card layout
    ],
    "iban": [
        "DE89 3704 0044 0532 0130 01",  # checksum fails
        "GB82WEST12345698765433",
        "XX89370400440532013000",  # no such country
        "DE8937040044053201300",  # too short for DE
    ],
    "ssn": [
        "000-12-3456",
        "666-12-3456",
        "900-12-3456",
        "123-00-6789",
        "123-45-0000",
        "123456789",  # bare digits without an "SSN" nearby
        "123-456-789",
        "123-45 6789",  # mixed separators
    ],
    "ip": ["999.1.1.1", "1.2.3", "256.256.256.256", "01.02.03.04", "::1", "a[::2]", "12:30:45"],
    "secret": [
        "sk-short",
        "sk-loading-spinner-container-xy",  # no digit: a CSS class, not a key
        "AKIA123",
        "ghp_short",
        b64url({"not": "jwt"}) + ".abc.def",  # header without "alg"
        b64url({"alg": "none"}),  # one segment
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n"
        "-----END PUBLIC KEY-----",
        "AIzaShort",
    ],
}
