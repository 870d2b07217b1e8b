"""What two documents must share to count as duplicates: their text or URL, normalised.

``simplify`` is datatrove's ``simplify_text`` with its default settings (the normalisation
FineWeb's MinHash runs on), vectorised over an Arrow array: lowercase; every number (digits
in any script, with one decimal separator) becomes ``0``; punctuation and control characters
become spaces; runs of whitespace become one space, trimmed; diacritics are removed (NFD,
then the non-spacing marks dropped). Words are then the runs between single spaces.

``whitespace`` only trims and collapses runs of whitespace (exact dedup's default: two texts
that differ only in layout are the same document). ``url`` normalises URLs as crawl dedup
does: scheme, ``www.``, default port, fragment, trailing slash and tracking parameters
(``utm_*``, ``gclid``, ``fbclid``) do not make two URLs different; host case is ignored.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from gristmill.stages.filters.heuristics.text import PY_WHITESPACE
from gristmill.stages.filters.id_hash import as_large_strings

Normalisation = Literal["none", "whitespace", "simplify", "url"]

#: The characters datatrove's normalisation turns into spaces: punctuation (ASCII, CJK and
#: full-width forms) and the C0/C1 control characters other than tab and newline.
PUNCTUATION = (
    "!/—”:％１〈&(、━\\【#%「」，】；+^]~“《„';’{|∶´[=-`*．（–？！：$～«〉,><》)?）。…@_.\"}►»"
    + "".join(
        chr(c)
        for start, stop in ((0, 9), (11, 13), (13, 32), (127, 160))
        for c in range(start, stop)
    )
)
#: What Python's ``str.isspace`` (and so ``re``'s ``\s`` on text) calls whitespace.
WHITESPACE = PY_WHITESPACE


def _character_class(characters: str) -> str:
    return "[" + "".join(f"\\x{{{ord(c):x}}}" for c in sorted(set(characters))) + "]"


_PUNCTUATION_CLASS = _character_class(PUNCTUATION)
_WHITESPACE_RUN = _character_class(WHITESPACE) + "+"
#: Punctuation turns into spaces and whitespace runs into one space: one pass does both.
_SEPARATOR_RUN = _character_class(PUNCTUATION + WHITESPACE) + "+"
_NUMBER = r"\p{Nd}+(?:[.,،٫⎖⎗⎘]\p{Nd}+)?"

TRACKING_PARAMETERS = ("gclid", "fbclid")
DEFAULT_PORTS = {"http": "80", "https": "443"}


def trim_whitespace(values: pa.Array) -> pa.Array:
    return pc.utf8_trim(values, characters=WHITESPACE)


def collapse_whitespace(values: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(trim_whitespace(values), _WHITESPACE_RUN, " ")


def simplify(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """datatrove's ``simplify_text`` (default settings), for a whole array at once.

    The same steps in the same order, in fewer passes: punctuation and whitespace go in one
    regular expression, and the Unicode decomposition runs only on the texts that are not
    ASCII by then (most web text is, once its quotes and dashes are gone). polars' regular
    expressions run these character classes about twice as fast as Arrow's, and its
    lowercasing writes a word-final capital sigma as Python's does (ς).
    """
    text = pl.Series(as_large_strings(values)).str.to_lowercase()
    text = text.str.replace_all(_NUMBER, "0").str.replace_all(_SEPARATOR_RUN, " ")
    wide = ~text.str.contains(r"^[\x00-\x7f]*$")
    if wide.any():
        decomposed = pc.utf8_normalize(text.filter(wide).to_arrow(), form="NFD")
        stripped = pl.Series(decomposed).str.replace_all(r"\p{Mn}", "")
        text = text.scatter(np.flatnonzero(wide.to_numpy()), stripped)
    return trim_whitespace(text.to_arrow().cast(pa.large_string()))


def normalise_url(url: str) -> str:
    """One URL's dedup key (see the module docstring); unparsable URLs are kept as they are."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    host = (parts.hostname or "").lower().removeprefix("www.")
    if port is not None and str(port) != DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    path = parts.path.rstrip("/")
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if not key.lower().startswith("utm_") and key.lower() not in TRACKING_PARAMETERS
    ]
    return host + path + (f"?{urlencode(query)}" if query else "")


def normalised(values: pa.Array | pa.ChunkedArray, how: Normalisation) -> pa.Array:
    """The values as a dedup compares them."""
    strings = as_large_strings(values)
    if how == "none":
        return strings
    if how == "whitespace":
        return collapse_whitespace(strings)
    if how == "simplify":
        return simplify(strings)
    return pa.array([normalise_url(u) for u in strings.to_pylist()], pa.large_string())
