"""Strict mode: only bare whitelisted calls with literal arguments are applied.

Each rejected line must count exactly one error and change nothing, whatever it would do
if it were run as Python.
"""

from __future__ import annotations

import pytest

from gristmill.refiners.prox import (
    Branch,
    NoOp,
    Normalize,
    RemoveAll,
    RemoveLines,
    Span,
    apply_chunk_programs,
    execute_program,
    parse_strict_line,
)

D_LINES = [
    "Home | News | Sports | Contact",
    "The Quick Guide to Sourdough Bread",
    "Sourdough bread relies on a fermented starter of flour and water instead of commercial"
    " yeast. Click here to subscribe!",
    "Feed the starter daily for about a week until it doubles within six hours of feeding.",
    "Mix the dough, let it rest, fold it several times, and bake it in a very hot covered pot.",
    "Share on Facebook | Tweet | Pin it",
    "(c) 2023 Example Media. All rights reserved.",
]
D = "\n".join(D_LINES)

REJECTED = {
    "attribute call": '__import__("os").system("echo pwned")',
    "attribute callee": "os.remove_lines(line_start=1, line_end=2)",
    "dunder attribute in argument": 'normalize(source_str="x".__class__, target_str="")',
    "dunder subscript": 'normalize(source_str=().__class__.__mro__[1], target_str="")',
    "builtin call": 'print("hi")',
    "open": 'open("/tmp/gristmill-pwned", "w")',
    "exec": 'exec("x = 1")',
    "eval": 'eval("1 + 1")',
    "getattr trick": 'getattr(__builtins__, "ev" + "al")("1")',
    "lambda argument": 'normalize(source_str=(lambda: "x")(), target_str="")',
    "name argument": "remove_lines(line_start=x, line_end=2)",
    "arithmetic argument": "remove_lines(line_start=1 + 1, line_end=3)",
    "power argument": "remove_lines(line_start=0, line_end=10**9)",
    "negative line": "remove_lines(line_start=-1, line_end=3)",
    "bool line": "remove_lines(line_start=True, line_end=3)",
    "float line": "remove_lines(line_start=1.0, line_end=3)",
    "string line": 'remove_lines(line_start="1", line_end=3)',
    "star args": "remove_lines(*[1, 2])",
    "double-star kwargs": 'remove_lines(**{"line_start": 1, "line_end": 2})',
    "f-string": 'normalize(source_str=f"{x}", target_str="")',
    "bytes": 'normalize(source_str=b"Home", target_str="")',
    "walrus": "remove_lines(line_start=(n := 1), line_end=2)",
    "comprehension": "remove_lines(line_start=[i for i in range(3)][0], line_end=2)",
    "two statements": "remove_lines(line_start=1, line_end=2); keep_chunk()",
    "assignment": "x = remove_lines(line_start=1, line_end=2)",
    "import": "import os",
    "call of a call": "remove_lines(line_start=1, line_end=2)(3)",
    "list of calls": "[remove_lines(line_start=1, line_end=2)]",
    "duplicate keyword": "remove_lines(line_start=1, line_end=2, line_start=3)",
    "keyword repeats positional": "remove_lines(1, 2, line_start=3)",
    "unknown keyword": "remove_lines(first=1, last=2)",
    "too many arguments": "remove_lines(1, 2, 3)",
    "missing argument": "remove_lines(line_start=1)",
    "start after end": "remove_lines(line_start=3, line_end=1)",
    "all=False": "remove_lines(all=False)",
    "all=1": "remove_lines(all=1)",
    "all with lines": "remove_lines(line_start=1, all=True)",
    "whitespace source": 'normalize(source_str=" ", target_str="")',
    "empty source": 'normalize(source_str="", target_str="")',
    "escaped newline in target": 'normalize(source_str="Home", target_str="a\\nb")',
    "int source": 'normalize(source_str=1, target_str="")',
    "no-op with argument": "keep_chunk(1)",
    "doc call at chunk level": "drop_doc()",
    "not whitelisted": "normalize_whitespace()",
    "missing paren": "remove_lines(line_start=1, line_end=2",
    "code fence": "```python",
    "comment": "# remove the navigation",
    "prose": "The first line is navigation.",
    "bare name": "keep_chunk",
    "null byte": "keep_chunk()\x00",
    "deep nesting": "remove_lines(" + "(" * 500 + "1" + ")" * 500 + ", line_end=2)",
    "deep unary chain": "remove_lines(line_start=" + "-" * 3000 + "1, line_end=2)",
    "overlong line": 'normalize(source_str="' + "x" * 5000 + '", target_str="")',
    "huge int literal": "remove_lines(line_start=0, line_end=" + "9" * 5000 + ")",
}


@pytest.mark.parametrize("line", REJECTED.values(), ids=REJECTED.keys())
def test_rejected_line_is_one_error_and_changes_nothing(line: str) -> None:
    parsed = parse_strict_line(line, "chunk")
    assert parsed.call is None
    assert parsed.errors == 1
    assert parsed.reason
    result = execute_program(D, line, mode="strict")
    assert result.errors == 1
    assert result.text == D
    assert result.branch is Branch.APPLIED


ACCEPTED = {
    "keywords": ("remove_lines(line_start=0, line_end=2)", RemoveLines(0, 2)),
    "old spelling": ("remove_lines(start=0, end=2)", RemoveLines(0, 2)),
    "positional": ("remove_lines(0, 2)", RemoveLines(0, 2)),
    "mixed": ("remove_lines(0, line_end=2)", RemoveLines(0, 2)),
    "keywords reordered": ("remove_lines(line_end=2, line_start=0)", RemoveLines(0, 2)),
    "indented": ("    remove_lines(line_start=5, line_end=5)  ", RemoveLines(5, 5)),
    "trailing comment": ("remove_lines(line_start=5, line_end=5)  # footer", RemoveLines(5, 5)),
    "all": ("remove_lines(all=True)", RemoveAll()),
    "normalize": ('normalize(source_str="Home", target_str="")', Normalize("Home", "")),
    "normalize one arg": ('normalize(source_str="Home")', Normalize("Home", "")),
    "normalize positional": ("normalize('(c)', '')", Normalize("(c)", "")),
    "normalize with comma": ('normalize(source_str="a, b", target_str="")', Normalize("a, b", "")),
    "normalize with '='": ('normalize(source_str="?id=42")', Normalize("?id=42", "")),
    "keep_chunk": ("keep_chunk()", NoOp("keep_chunk")),
    "skip_chunk": ("skip_chunk()", NoOp("skip_chunk")),
    "untouch_doc": ("untouch_doc()", NoOp("untouch_doc")),
}


@pytest.mark.parametrize(("line", "call"), ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted_line(line: str, call: object) -> None:
    parsed = parse_strict_line(line, "chunk")
    assert parsed.call == call
    assert parsed.errors == 0


def test_strict_reads_strings_as_python_does() -> None:
    # compat keeps the single quotes and cuts at ')' and ','; strict reads the literal
    program = "normalize('(c)', '')\nnormalize(source_str=\"a, b\", target_str=\"\")"
    text = D + "\nsee a, b here"
    result = execute_program(text, program, mode="strict")
    assert result.errors == 0
    assert result.text.split("\n")[6] == " 2023 Example Media. All rights reserved."
    assert result.text.split("\n")[7] == "see  here"


def test_out_of_range_removal_is_an_error_not_a_clip() -> None:
    result = execute_program(D, "remove_lines(line_start=5, line_end=9)", mode="strict")
    assert (result.errors, result.text) == (1, D)
    compat = execute_program(D, "remove_lines(line_start=5, line_end=9)", mode="compat")
    assert compat.text == "\n".join(D_LINES[:5])


def test_two_rejected_lines_discard_the_program() -> None:
    program = "remove_lines(line_start=0, line_end=0)\nprint(1)\nopen('x')"
    result = execute_program(D, program, mode="strict")
    assert (result.errors, result.branch, result.text) == (2, Branch.DISCARDED, D)


def test_blank_lines_are_not_errors() -> None:
    result = execute_program(D, "\n\n   \nremove_lines(line_start=0, line_end=0)\n", mode="strict")
    assert result.errors == 0
    assert result.text == "\n".join(D_LINES[1:])


def test_same_thresholds_as_compat() -> None:
    assert execute_program(D, "remove_lines(all=True)", mode="strict").branch is Branch.DROP_RATIO
    short = execute_program("short doc with few words", "keep_chunk()", mode="strict")
    assert short.branch is Branch.DROP_SHORT
    assert execute_program("  \n ", "", mode="strict").branch is Branch.DROP_EMPTY


# ---- confinement to the chunk that wrote the call

BIG_LINES = [f"Line {i} says something useful about bread baking. Read more" for i in range(700)]
BIG = "\n".join(BIG_LINES)
CHUNKS = [Span(0, 310), Span(311, 640), Span(641, 699)]


def test_normalize_is_confined_to_its_chunk() -> None:
    programs = ["keep_chunk()", 'normalize(source_str=" Read more")', "keep_chunk()"]
    result = apply_chunk_programs(BIG, CHUNKS, programs, mode="strict")
    out = result.text.split("\n")
    assert result.errors == 0
    assert all(line.endswith("Read more") for line in out[:311] + out[641:])
    assert not any("Read more" in line for line in out[311:641])
    compat = apply_chunk_programs(BIG, CHUNKS, programs, mode="compat")
    assert "Read more" not in compat.text


def test_removal_outside_its_chunk_is_refused() -> None:
    programs = ["remove_lines(line_start=300, line_end=320)", "keep_chunk()", "keep_chunk()"]
    result = apply_chunk_programs(BIG, CHUNKS, programs, mode="strict")
    assert (result.errors, result.text) == (1, BIG)
    programs[1] = "remove_lines(line_start=311, line_end=320)"
    result = apply_chunk_programs(BIG, CHUNKS, programs, mode="strict")
    assert result.text == "\n".join(BIG_LINES[:311] + BIG_LINES[321:])


def test_remove_all_removes_only_its_chunk() -> None:
    programs = ["keep_chunk()", "keep_chunk()", "remove_lines(all=True)"]
    result = apply_chunk_programs(BIG, CHUNKS, programs, mode="strict")
    assert result.text == "\n".join(BIG_LINES[:641])


# ---- doc level


@pytest.mark.parametrize(
    ("program", "text", "branch", "errors"),
    [
        ("drop_doc()", "", Branch.DROP_DOC, 0),
        ("keep_doc()", D, Branch.KEEP_DOC, 0),
        ("keep_doc()  # do not drop", D, Branch.KEEP_DOC, 0),  # compat would drop this
        ("The document should be dropped.", D, Branch.KEEP_DOC, 1),
        ("drop_doc()\nkeep_doc()", D, Branch.KEEP_DOC, 1),
        ("drop_doc(1)", D, Branch.KEEP_DOC, 1),
        ("remove_lines(line_start=0, line_end=0)", D, Branch.KEEP_DOC, 1),
        ("", D, Branch.KEEP_DOC, 0),
    ],
)
def test_doc_level(program: str, text: str, branch: Branch, errors: int) -> None:
    result = execute_program(D, program, level="doc", mode="strict")
    assert (result.text, result.branch, result.errors) == (text, branch, errors)
