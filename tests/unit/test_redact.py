"""Secrets in values and in source lines are replaced, the text around them kept."""

from __future__ import annotations

import pytest

from cyclescope.describe import format_key, redact, redact_code

TOKEN = "9c1f0e2a7b3d4c5e8f6a1b2c3d4e5f60a7b8c9d0"


@pytest.mark.parametrize("text, expected", [
    ("Bearer sk_live_abc.def", "Bearer <redacted>"),
    ("https://admin:hunter2@db.example/x", "https://<redacted>@db.example/x"),
    ("/cb?code=1&token=abc&x=2", "/cb?code=1&token=<redacted>&x=2"),
    (f"session {TOKEN}", "session <redacted>"),
    ('password="hunter2"', 'password="<redacted>"'),
    ("{'api_key': 'abc'}", "{'api_key': '<redacted>'}"),
    ("conn-1234567", "conn-1234567"),
    ("AbstractSingletonProxyFactoryBeanHelper", "<redacted>"),  # a value: any long run may be a token
])
def test_redact_values(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("line, expected", [
    ('get(url, headers={"Authorization": "Bearer sk_live_HARDCODED0123456789abcdefXYZ"})',
     'get(url, headers={"Authorization": "Bearer <redacted>"})'),
    ('conn = connect("postgres://admin:hunter2@db/app", timeout=3)',
     'conn = connect("postgres://<redacted>@db/app", timeout=3)'),
    ('API_KEY = "sk_live_abcdef"', 'API_KEY = "<redacted>"'),
    ("client = Client(api_key='abc123', retries=2)", "client = Client(api_key='<redacted>', retries=2)"),
    ('if token == "s3cr3t":', 'if token == "<redacted>":'),
    ('url = base + "?token=abc&page=2"', 'url = base + "?token=<redacted>&page=2"'),
    (f'SESSIONS["{TOKEN}"] = c', 'SESSIONS["<redacted>"] = c'),
    (f"x = 1  # was {TOKEN}", "x = 1  # was <redacted>"),
    ('x = "AbstractSingletonProxyFactoryBeanHelper"', 'x = "<redacted>"'),
    # Code is no secret: names, however long, and expressions stay.
    ("self._on_connection_lost_callbacks_registry = []", "self._on_connection_lost_callbacks_registry = []"),
    ("self.token = token", "self.token = token"),
    ("password = read_password(PATH)", "password = read_password(PATH)"),
    ('password = ""', 'password = ""'),
])
def test_redact_code_keeps_the_line_readable(line: str, expected: str) -> None:
    assert redact_code(line) == expected


def test_redacting_twice_changes_nothing() -> None:
    line = 'get("https://u:p@h/?token=t", headers={"Authorization": "Bearer x"}, api_key="k")'
    once = redact_code(line)
    assert redact_code(once) == once and redact(redact(line)) == redact(line)


@pytest.mark.parametrize(("key", "shown"), [
    ("https://api.example/items/3?token=abc123", "['https://api.example/items/3?token=<redacted>']"),
    ("https://user:hunter2@db.example/main", "['https://<redacted>@db.example/main']"),
    ("a" * 40, "['<redacted>']"),
    ("plain-key", "['plain-key']"),
])
def test_a_dict_keys_secret_is_replaced_where_it_is(key: str, shown: str) -> None:
    # the rest of the key still says which entry holds the object
    assert format_key(key)[0] == shown


def _every_shape_applied(text: str, code: bool) -> str:
    """What redaction gives when every shape runs, whatever the text (no shortcut)."""
    import cyclescope.describe as describe

    real = describe._may_hold_secret
    describe._may_hold_secret = lambda text: True
    try:
        return describe.redact_code(text) if code else describe.redact(text)
    finally:
        describe._may_hold_secret = real


def _texts_to_redact() -> list[str]:
    import inspect
    import json
    import urllib.parse

    lines = [line for module in (json, urllib.parse, inspect) for line in inspect.getsource(module).splitlines()]
    secrets = ["Bearer abc.def", "BASIC dXNlcjpw", "ftp://u:p@h/", "x?SIG=1", "y&Signature=2", "a&ApiKey=3",
               'PassWD = "x"', "Secret_Value='y'", "access_TOKEN: 'z'", "API-KEY='k'", TOKEN,
               "ſecret = 'hunter2'", "K" * 40]
    return lines + [f"{before}{secret}{after}" for secret in secrets
                    for before, after in (("", ""), ("call(", ")"), ("# ", " end"))]


def test_the_shortcut_for_texts_without_a_secret_shape_changes_no_result() -> None:
    texts = _texts_to_redact()
    changed = [t for t in texts if redact(t) != t]
    assert len(changed) >= 30  # the crafted secrets, at least: the comparison below means something
    for text in texts:
        assert redact(text) == _every_shape_applied(text, code=False), text
        assert redact_code(text) == _every_shape_applied(text, code=True), text
