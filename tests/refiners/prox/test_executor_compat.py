"""Compat executor: worked examples on two small documents, plus the parsing quirks of upstream.

The expected outputs are the upstream executor's (GAIR-NLP/ProX ``utils/chunk_utils.py``, run
on these inputs); a failure here means our output would differ from what the released ProX code
produces for the same model output.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gristmill.refiners.prox import (
    Branch,
    Span,
    apply_chunk_programs,
    execute_program,
    merge_chunk_programs,
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

E_LINES = [
    "Visit http://example.com/page?id=42&x=1 for more",
    "Body text line with enough words to survive the filter rule here ok",
    "Another body line with some more words in it",
    "footer",
]
E = "\n".join(E_LINES)


def lines_of(doc_lines: list[str], keep: list[int]) -> str:
    return "\n".join(doc_lines[i] for i in keep)


def with_line(doc_lines: list[str], index: int, new: str) -> str:
    return "\n".join(new if i == index else line for i, line in enumerate(doc_lines))


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    program: str
    expected: str
    errors: int
    branch: Branch


CASES = [
    # ---- document D, worked examples 1-14
    Case(
        "1 removals and normalize",
        D,
        "remove_lines(line_start=0, line_end=0)\n"
        'normalize(source_str=" Click here to subscribe!", target_str="")\n'
        "remove_lines(line_start=5, line_end=6)",
        "\n".join([D_LINES[1], D_LINES[2].replace(" Click here to subscribe!", ""), *D_LINES[3:5]]),
        0,
        Branch.APPLIED,
    ),
    Case("2 no-op", D, "keep_chunk()", D, 0, Branch.APPLIED),
    Case("3 positional args are an error", D, "remove_lines(0, 0)", D, 1, Branch.APPLIED),
    Case(
        "4 two errors discard the program",
        D,
        "remove_lines(0, 0)\nremove_lines(5, 6)",
        D,
        2,
        Branch.DISCARDED,
    ),
    Case(
        "5 out-of-range tail clipped, one error",
        D,
        "remove_lines(line_start=5, line_end=9)",
        lines_of(D_LINES, [0, 1, 2, 3, 4]),
        1,
        Branch.APPLIED,
    ),
    Case(
        "6 two out-of-range intervals",
        D,
        "remove_lines(line_start=7, line_end=9)\nremove_lines(line_start=12, line_end=12)",
        D,
        2,
        Branch.DISCARDED,
    ),
    Case(
        "7 overlapping ranges are unioned",
        D,
        "remove_lines(line_start=3, line_end=5)\nremove_lines(line_start=4, line_end=6)",
        lines_of(D_LINES, [0, 1, 2]),
        0,
        Branch.APPLIED,
    ),
    Case("8 remove all drops", D, "remove_lines(all=True)", "", 0, Branch.DROP_RATIO),
    Case(
        "9 ')' inside a string ends the argument list",
        D,
        'normalize(source_str="(c)", target_str="")',
        with_line(D_LINES, 6, ") 2023 Example Media. All rights reserved."),
        0,
        Branch.APPLIED,
    ),
    Case(
        "10 comma inside a string: ignored, no error",
        D,
        'normalize(source_str="a, b", target_str="")',
        D,
        0,
        Branch.APPLIED,
    ),
    Case(
        "11 one-argument normalize deletes",
        D,
        'normalize(source_str="Sports")',
        with_line(D_LINES, 0, "Home | News |  | Contact"),
        0,
        Branch.APPLIED,
    ),
    Case(
        "12 22 words survive",
        D,
        "remove_lines(line_start=1, line_end=4)",
        lines_of(D_LINES, [0, 5, 6]),
        0,
        Branch.APPLIED,
    ),
    Case(
        "13 missing ')' is an error but still applied",
        D,
        'normalize(source_str="bread", target_str="loaf"',
        with_line(D_LINES, 2, D_LINES[2].replace("Sourdough bread", "Sourdough loaf")),
        1,
        Branch.APPLIED,
    ),
    Case(
        "14 start > end is empty", D, "remove_lines(line_start=4, line_end=2)", D, 0, Branch.APPLIED
    ),
    # ---- document E
    Case(
        "E '=' inside a string truncates the pattern",
        E,
        'normalize(source_str="http://example.com/page?id=42&x=1", target_str="")',
        with_line(E_LINES, 0, "Visit =42&x=1 for more"),
        0,
        Branch.APPLIED,
    ),
    Case(
        "E single quotes are kept, so nothing matches",
        E,
        "normalize(source_str='for more', target_str='')",
        E,
        0,
        Branch.APPLIED,
    ),
    Case(
        "E only 'footer' survives",
        E,
        "remove_lines(line_start=0, line_end=2)",
        "",
        0,
        Branch.DROP_RATIO,
    ),
    Case(
        "E spaces around ints are fine; 5 words remain",
        E,
        "remove_lines(line_start=1 , line_end= 2 )",
        "",
        0,
        Branch.DROP_SHORT,
    ),
    Case(
        "E no escape processing",
        E,
        "remove_lines(line_start=0, line_end=0)\n"
        'normalize(source_str="Body", target_str="Corpus\\nX")',
        "\n".join([E_LINES[1].replace("Body", "Corpus\\nX"), *E_LINES[2:]]),
        0,
        Branch.APPLIED,
    ),
    Case(
        "E indented op ignored",
        E,
        "keep_chunk()\n  remove_lines(line_start=3, line_end=3)",
        E,
        0,
        Branch.APPLIED,
    ),
    Case(
        "E keyword names ignored, order counts",
        E,
        "remove_lines(line_end=3, line_start=2)",
        E,
        0,
        Branch.APPLIED,
    ),
    # ---- short and whitespace-only documents
    Case("short document", "short doc with few words", "keep_chunk()", "", 0, Branch.DROP_SHORT),
    Case(
        "whitespace-only document (upstream crashes)",
        "   ",
        "keep_chunk()",
        "",
        0,
        Branch.DROP_EMPTY,
    ),
    Case("empty document", "", "", "", 0, Branch.DROP_EMPTY),
    # ---- further quirks of the upstream parser and executor
    Case(
        "quirk: normalize_* lines parse as normalize and count an error",
        D,
        "normalize_whitespace()",
        D,
        1,
        Branch.APPLIED,
    ),
    Case(
        "quirk: one-argument normalize of a space deletes every space",
        E,
        'normalize(source_str=" ")',
        "",  # every line becomes one word: 4 words left
        0,
        Branch.DROP_SHORT,
    ),
    Case(
        "quirk: two-argument normalize of a space is guarded",
        D,
        'normalize(source_str=" ", target_str="")',
        D,
        0,
        Branch.APPLIED,
    ),
    Case(
        "quirk: spaces around '=' keep a quote in the pattern",
        D,
        'normalize(source_str = "Home", target_str="")',
        D,
        0,
        Branch.APPLIED,
    ),
    Case(
        "quirk: negative start is accepted",
        D,
        "remove_lines(line_start=-1, line_end=3)",
        lines_of(D_LINES, [4, 5, 6]),
        0,
        Branch.APPLIED,
    ),
    Case(
        "quirk: 'all=True' anywhere in a remove_lines line removes everything",
        D,
        "remove_lines(line_start=1, line_end=2) # all=True",
        "",
        0,
        Branch.DROP_RATIO,
    ),
    Case("quirk: missing '(' is an error", D, "remove_lines", D, 1, Branch.APPLIED),
    Case(
        "quirk: one part for remove_lines is an error",
        D,
        "remove_lines(line_start=1)",
        D,
        1,
        Branch.APPLIED,
    ),
    Case(
        "quirk: missing ')' on remove_lines cuts the last digit: two errors",
        D,
        "remove_lines(line_start=1, line_end=3",
        D,
        2,
        Branch.DISCARDED,
    ),
    Case(
        "quirk: float line numbers are errors",
        D,
        "remove_lines(line_start=1.0, line_end=3)",
        D,
        1,
        Branch.APPLIED,
    ),
    Case(
        "quirk: unknown calls are ignored without error",
        D,
        "drop_doc()\nuntouch_doc()\nskip_chunk()\nprint('x')",
        D,
        0,
        Branch.APPLIED,
    ),
    Case(
        "quirk: the <=10-word rule fires even for a discarded program",
        D,
        "remove_lines(line_start=0, line_end=5)\nremove_lines(0)\nremove_lines(1)",
        "",
        2,
        Branch.DROP_SHORT,
    ),
    Case(
        "quirk: normalize replaces in program order across the whole document",
        D,
        'normalize(source_str="Sourdough", target_str="Rye")\n'
        'normalize(source_str="Rye bread", target_str="Bread")',
        "\n".join(
            [
                D_LINES[0],
                "The Quick Guide to Rye Bread",
                D_LINES[2].replace("Sourdough bread", "Bread"),
                *D_LINES[3:],
            ]
        ),
        0,
        Branch.APPLIED,
    ),
    Case(
        "quirk: adjacent out-of-range intervals merge into one error",
        D,
        "remove_lines(line_start=7, line_end=8)\nremove_lines(line_start=9, line_end=9)",
        D,
        1,
        Branch.APPLIED,
    ),
    Case(
        "boundary: exactly 10 surviving words drop the document",
        "one two three four five six seven eight nine ten\nextra words here",
        "remove_lines(line_start=1, line_end=1)",
        "",
        0,
        Branch.DROP_SHORT,
    ),
    Case(
        "boundary: 11 surviving words keep it",
        "one two three four five six seven eight nine ten eleven\nextra words here",
        "remove_lines(line_start=1, line_end=1)",
        "one two three four five six seven eight nine ten eleven",
        0,
        Branch.APPLIED,
    ),
    Case(
        "boundary: exactly 5% of the words surviving is a drop",
        "\n".join(["w " * 11, *["x " * 11] * 19]),  # 11 of 220 words survive
        "remove_lines(line_start=1, line_end=19)",
        "",
        0,
        Branch.DROP_RATIO,
    ),
    Case(
        "quirk: leading spaces of the whole program are stripped",
        D,
        "   remove_lines(line_start=0, line_end=0)",
        lines_of(D_LINES, [1, 2, 3, 4, 5, 6]),
        0,
        Branch.APPLIED,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_worked_example(case: Case) -> None:
    result = execute_program(case.text, case.program, level="chunk", mode="compat")
    assert result.text == case.expected
    assert result.errors == case.errors
    assert result.branch is case.branch
    assert result.dropped == (case.expected == "")
    assert result.edited == (result.branch is Branch.APPLIED and case.expected != case.text)


@pytest.mark.parametrize(
    ("program", "expected", "branch"),
    [
        ("drop_doc()", "", Branch.DROP_DOC),
        ("keep_doc()", D, Branch.KEEP_DOC),
        ("keep_doc()  # do not drop", "", Branch.DROP_DOC),
        ("The document should be dropped.", "", Branch.DROP_DOC),
        ("Drop_doc()", D, Branch.KEEP_DOC),  # case-sensitive substring
        ("", D, Branch.KEEP_DOC),
    ],
)
def test_doc_level_drop_substring(program: str, expected: str, branch: Branch) -> None:
    result = execute_program(D, program, level="doc", mode="compat")
    assert (result.text, result.branch, result.errors) == (expected, branch, 0)


# ---- the multi-chunk example: global numbering, document-wide normalize, summed errors

BIG_LINES = [
    f"Line {i} of the long document says something useful, Read more"
    if i % 100 == 0
    else f"Line {i} of the long document says something useful about bread baking"
    for i in range(2000)
]
BIG = "\n".join(BIG_LINES)
CHUNKS = [Span(0, 310), Span(311, 640), Span(641, 1999)]


def test_chunk_program_uses_global_line_numbers() -> None:
    programs = ["keep_chunk()", "remove_lines(line_start=311, line_end=315)", "keep_chunk()"]
    result = apply_chunk_programs(BIG, CHUNKS, programs, mode="compat")
    expected = [line for i, line in enumerate(BIG_LINES) if not 311 <= i <= 315]
    assert result.text == "\n".join(expected)
    assert result.errors == 0


def test_normalize_from_one_chunk_edits_the_whole_document() -> None:
    programs = ["keep_chunk()", 'normalize(source_str=", Read more", target_str="")', ""]
    result = apply_chunk_programs(BIG, CHUNKS, programs, mode="compat")
    # the comma splits the call into three parts: ignored, nothing changes
    assert result.text == BIG
    programs[1] = 'normalize(source_str=" Read more", target_str="")'
    result = apply_chunk_programs(BIG, CHUNKS, programs, mode="compat")
    assert "Read more" not in result.text
    assert result.text.split("\n")[0] == "Line 0 of the long document says something useful,"


def test_errors_from_different_chunks_add_up() -> None:
    programs = [
        "remove_lines(0, 3)",
        "remove_lines(line_start=311, line_end=315)",
        "remove_lines(x)",
    ]
    result = apply_chunk_programs(BIG, CHUNKS, programs, mode="compat")
    assert result.errors == 2
    assert result.branch is Branch.DISCARDED
    assert result.text == BIG


def test_merged_program_matches_upstream_storage() -> None:
    assert merge_chunk_programs([" keep_chunk() ", "remove_lines(line_start=1, line_end=2)  "]) == (
        "keep_chunk()\nremove_lines(line_start=1, line_end=2)"
    )
    programs = ["  remove_lines(line_start=0, line_end=0)", "keep_chunk()", ""]
    merged = apply_chunk_programs(BIG, CHUNKS, programs, mode="compat")
    single = execute_program(BIG, merge_chunk_programs(programs), mode="compat")
    assert merged == single
    assert merged.text == "\n".join(BIG_LINES[1:])


def test_chunk_and_program_counts_must_match() -> None:
    with pytest.raises(ValueError, match="3 chunks but 2 programs"):
        apply_chunk_programs(BIG, CHUNKS, ["", ""], mode="compat")


def test_document_without_chunks_is_dropped() -> None:
    result = apply_chunk_programs("", [], [], mode="compat")
    assert (result.text, result.branch) == ("", Branch.DROP_EMPTY)


def test_bad_mode_and_level_are_caller_errors() -> None:
    with pytest.raises(ValueError):
        execute_program(D, "", mode="lenient")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        execute_program(D, "", level="line")  # type: ignore[arg-type]


def test_huge_ranges_do_not_allocate_per_line() -> None:
    result = execute_program(D, "remove_lines(line_start=0, line_end=10**18)", mode="compat")
    assert result.errors == 1  # "10**18" is not an int literal upstream either
    result = execute_program(D, f"remove_lines(line_start=6, line_end={10**18})", mode="compat")
    assert result.text == lines_of(D_LINES, [0, 1, 2, 3, 4, 5])
    assert result.errors == 1
