"""JSON exactly as the json module writes and reads it, over CPython's C accelerator (`_json`) alone.

The job's init reads and writes JSON before every script starts (the config files, the SM_* variables, CLUSTER_SPEC), and
json's own import (re, enum, functools, collections: ~10 ms here) would cost every job's start-up. `_json` is what json
itself calls: `dumps` without indent is json.dumps's own C encoder called with json.dumps's arguments, `loads` is
json.loads's own C scanner with its defaults, so the text and values are json's. Where `_json` is missing (another
Python), json itself does the work.
"""

try:
    from _json import encode_basestring_ascii as _quote
    from _json import make_encoder as _make_encoder
    from _json import make_scanner as _make_scanner
except ImportError:  # pragma: no cover - CPython always has it
    _make_encoder = _make_scanner = _quote = None

#: JSON's whitespace (json.decoder.WHITESPACE), skipped around a document.
WHITESPACE = " \t\n\r"


def _default(value):
    # json.JSONEncoder.default: what JSON cannot say is a TypeError (toolkit.safe_serialize falls back to str() on it).
    raise TypeError("Object of type %s is not JSON serializable" % value.__class__.__name__)


def dumps(value, sort_keys=False, separators=None, indent=None):
    """json.dumps(value, sort_keys=..., separators=..., indent=...) with json's other defaults (ensure_ascii, allow_nan)."""
    if _make_encoder is None:
        import json

        return json.dumps(value, sort_keys=sort_keys, separators=separators, indent=indent)
    if separators is None:
        separators = (",", ": ") if indent is not None else (", ", ": ")
    item, key = separators
    if indent is None:
        return _one_line(value, item, key, sort_keys)
    style = (" " * indent if isinstance(indent, int) else indent, item, key, sort_keys)
    return "".join(_indented(value, style, 0))


def _one_line(value, item, key, sort_keys):
    # json.JSONEncoder.iterencode(value, _one_shot=True): c_make_encoder(markers, default, encoder, indent, key_separator,
    # item_separator, sort_keys, skipkeys, allow_nan), with a fresh markers dict (check_circular).
    return "".join(_make_encoder({}, _default, _quote, None, key, item, sort_keys, False, True)(value, 0))


def _key(name):
    """json's text for a key: a str as it is; a number, bool or None as JSON writes the value (1, 1.5, NaN, true, null)."""
    if isinstance(name, str):
        return name
    if isinstance(name, (float, int)) or name is None:  # bool is an int
        return _one_line(name, ", ", ": ", False)
    raise TypeError("keys must be str, int, float, bool or None, not %s" % name.__class__.__name__)


def _indented(value, style, level):
    """json.encoder._make_iterencode's text with an indent (json's C encoder writes none before Python 3.14): each member
    of a container on its own line, each scalar as the one-line encoder writes it (json's floatstr and int repr are its).
    style: (the indent's text, the item separator, the key separator, sort_keys)."""
    indent, item, key, sort_keys = style
    if isinstance(value, dict):
        if not value:
            yield "{}"
            return
        inner = "\n" + indent * (level + 1)
        yield "{" + inner
        members = sorted(value.items()) if sort_keys else value.items()
        for index, (name, member) in enumerate(members):
            yield (item + inner if index else "") + _quote(_key(name)) + key
            yield from _indented(member, style, level + 1)
        yield "\n" + indent * level + "}"
    elif isinstance(value, (list, tuple)):
        if not value:
            yield "[]"
            return
        inner = "\n" + indent * (level + 1)
        yield "[" + inner
        for index, member in enumerate(value):
            yield (item + inner if index else "")
            yield from _indented(member, style, level + 1)
        yield "\n" + indent * level + "]"
    else:
        yield _one_line(value, item, key, sort_keys)


class _Decoding:
    """What json's C scanner reads from its json.JSONDecoder: json.loads's defaults (json.decoder._CONSTANTS for NaN and the
    infinities; float and int themselves, the scanner's fast path)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__


_scan = _make_scanner(_Decoding()) if _make_scanner is not None else None


def loads(text):
    """json.loads(text): the same value for the same text. Where json.loads fails this raises ValueError too (json's
    JSONDecodeError is one), with json's message; anything but a str goes to json.loads itself."""
    if _scan is None or not isinstance(text, str):
        import json

        return json.loads(text)
    if text.startswith("\ufeff"):
        raise ValueError(_where("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0))
    start = len(text) - len(text.lstrip(WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration as stop:
        raise ValueError(_where("Expecting value", text, stop.value)) from None
    except (SystemError, ValueError):
        # Malformed inside a string, object or array: the C scanner raises json.decoder.JSONDecodeError, which before
        # Python 3.12 it only finds once json is imported (else a SystemError), so json's own loads says what is wrong.
        import json

        return json.loads(text)
    if len(text.rstrip(WHITESPACE)) != end:
        # The value ends in a character that is not whitespace, so only trailing whitespace may follow it.
        raise ValueError(_where("Extra data", text, end + len(text[end:]) - len(text[end:].lstrip(WHITESPACE))))
    return value


def _where(message, text, pos):
    # json.JSONDecodeError's message: "MSG: line L column C (char P)".
    line = text.count("\n", 0, pos) + 1
    column = pos - text.rfind("\n", 0, pos)
    return "%s: line %d column %d (char %d)" % (message, line, column, pos)
