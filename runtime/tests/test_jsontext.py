"""jsontext writes and reads exactly what the json module does (it calls json's own C encoder and scanner), for every kind
of value the toolkit and the contracts write: the config files (indent=2), the SM_* variables (sort_keys, compact
separators), CLUSTER_SPEC and SDK v3's arguments (json.dumps's defaults), and what they read back."""

import json

import pytest

from alekseylearn_runtime import jsontext

TEXTS = [
    "",
    "plain",
    'quotes " and \\ backslash / slash',
    "control \x00 \x01 \x1f \x7f \b \f \n \r \t",
    "unicode é ü 日本 \u2028 \u2029 \U0001f600",
    "surrogate \ud800 alone",
]
NUMBERS = [
    0,
    -1,
    7,
    2**63,
    -(2**100),
    10**400,
    0.0,
    -0.0,
    0.1,
    1.5,
    -2.25,
    1e-300,
    5e-324,
    1e300,
    1.7976931348623157e308,
    1e16,
    123456789.123,
]
SPECIAL = [float("nan"), float("inf"), float("-inf")]
VALUES = [
    *TEXTS,
    *NUMBERS,
    *SPECIAL,
    True,
    False,
    None,
    [],
    {},
    (),
    [1, "a", None, True, [], {}, [[]], 2.5],
    ("tuple", 1),
    {"b": 1, "a": [1, 2, {"z": None, "y": {}}], "c": {"nested": {"deeper": ["x", 1.5, False]}}, "": "empty key"},
    {"é": "ü", "日本": ["\n", '"']},
    {3: "int key", 2.5: "float key", True: "bool key", None: "none key", float("nan"): "nan key", float("-inf"): "inf key"},
    {False: "false key", 10**20: "big int key"},
    {"hosts": ["algo-1", "algo-2"], "current_host": "algo-1", "instance_groups": [{"hosts": ["algo-1"], "name": "g"}]},
]
STYLES = [
    {},
    {"sort_keys": True, "separators": (",", ":")},
    {"indent": 2},
    {"indent": 2, "sort_keys": True},
    {"indent": 0},
    {"indent": "\t"},
    {"separators": (";", "=")},
]


@pytest.mark.parametrize("style", STYLES, ids=repr)
def test_dumps_writes_what_json_dumps_writes(style):
    for value in VALUES:
        sortable = not (style.get("sort_keys") and isinstance(value, dict) and not all(isinstance(k, str) for k in value))
        if sortable:
            assert jsontext.dumps(value, **style) == json.dumps(value, **style), value


def test_dumps_fails_where_json_dumps_fails():
    for value in [{1, 2}, object(), {"a": b"bytes"}, {("tuple", "key"): 1}]:
        for style in STYLES:
            with pytest.raises(TypeError) as ours:
                jsontext.dumps(value, **style)
            with pytest.raises(TypeError) as theirs:
                json.dumps(value, **style)
            assert str(ours.value) == str(theirs.value)


DOCUMENTS = [
    *(json.dumps(value) for value in VALUES if not (isinstance(value, dict) and not all(isinstance(k, str) for k in value))),
    *(json.dumps(value, indent=2) for value in VALUES[-2:]),
    '  \t\n {"a" : [ 1 , 2.50 , -3e2 , 1E+2, true ] }\r\n ',
    "NaN",
    "-Infinity",
    '"\\u00e9\\ud83d\\ude00\\n"',
    "12345678901234567890123456789",
    "1.0000000000000000000001",
    '{"a": 1, "a": 2}',
]


def same(a, b):
    """Equal, NaN included (json.dumps writes the same text for the same value)."""
    return json.dumps(a) == json.dumps(b) and type(a) is type(b)


def test_loads_reads_what_json_loads_reads():
    for text in DOCUMENTS:
        assert same(jsontext.loads(text), json.loads(text)), text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "  ",
        "adam",
        "0.1.2",
        "1 2",
        "{} x",
        "[1,]",
        '{"a" 1}',
        '{"a": 1,}',
        '"unterminated',
        '"bad \\x escape"',
        "\ufeff{}",
        "[1,\n  2,\n  oops]",
        "tru",
    ],
)
def test_loads_fails_where_json_loads_fails_with_its_message(text):
    with pytest.raises(ValueError) as ours:
        jsontext.loads(text)
    with pytest.raises(ValueError) as theirs:
        json.loads(text)
    assert str(ours.value) == str(theirs.value)


def test_anything_but_text_is_json_loads_own_case():
    assert jsontext.loads(b'{"a": 1}') == {"a": 1}
    for value in (None, 5, ["x"]):
        with pytest.raises(TypeError):
            jsontext.loads(value)


def test_without_the_c_accelerator_json_itself_does_the_work(monkeypatch):
    monkeypatch.setattr(jsontext, "_make_encoder", None)
    monkeypatch.setattr(jsontext, "_scan", None)
    value = {"b": [1, 2.5, "é"], "a": None}
    for style in STYLES:
        assert jsontext.dumps(value, **style) == json.dumps(value, **style)
    assert jsontext.loads('{"a": [1]}') == {"a": [1]}
