"""Properties of both executors over random documents and random (often hostile) programs.

Model output is untrusted: whatever it says, execution must not raise, must not add lines
or text from nowhere, and must not run anything.
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gristmill.refiners.prox import (
    Branch,
    NoOp,
    Normalize,
    RemoveLines,
    RuleProgrammer,
    Span,
    apply_chunk_programs,
    execute_program,
    is_safe_literal,
)

WORDS = [
    "Home", "About", "Contact", "the", "bread", "starter", "flour", "water", "Read", "more",
    "Share", "Facebook", "Twitter", "|", "/", "©", "2023", "All", "rights", "reserved.",
    "cookies", "Subscribe", "newsletter", "(c)", "x=1", "a,", "b)", '"q"', "'s'", "\\n",
]  # fmt: skip

MALICIOUS = [
    '__import__("os").system("touch /tmp/gristmill-prox-pwned")',
    "exec(\"open('/tmp/gristmill-prox-pwned', 'w')\")",
    "eval(\"__import__('os').getcwd()\")",
    'normalize(source_str=__import__("os").getcwd(), target_str="")',
    "remove_lines(line_start=__import__('sys').exit(1), line_end=2)",
    'normalize(source_str="x".__class__.__base__.__subclasses__(), target_str="")',
    "breakpoint()",
    "import os; os.system('id')",
    "remove_lines(line_start=" + "(" * 300 + "1" + ")" * 300 + ", line_end=2)",
    "normalize(" + "-" * 5000 + "1)",
]

any_line = st.text(st.characters(exclude_characters="\n"), max_size=40)
word_line = st.lists(st.sampled_from(WORDS), max_size=14).map(" ".join)
documents = st.lists(st.one_of(word_line, any_line), max_size=25).map("\n".join)

ints = st.integers(-3, 30)
any_str = st.text(st.characters(exclude_characters="\n"), max_size=12)
# strings that parse the same way in both modes, so normalize can only delete
plain_str = st.text(
    st.characters(exclude_characters="\n\r\"'\\,)=#", exclude_categories=("Cc", "Cs")), max_size=10
)


def _remove_calls() -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds("remove_lines(line_start={}, line_end={})".format, ints, ints),
        st.builds("remove_lines(start={}, end={})".format, ints, ints),
        st.builds("remove_lines({}, {})".format, ints, ints),
        st.sampled_from(["remove_lines(all=True)", "keep_chunk()", "skip_chunk()", "drop_doc()"]),
    )


def _deleting_normalize_calls() -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds('normalize(source_str="{}", target_str="")'.format, plain_str),
        st.builds('normalize(source_str="{}")'.format, plain_str),
        st.builds("normalize('{}', '')".format, plain_str),
    )


def _hostile_lines() -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds('normalize(source_str="{}", target_str="{}")'.format, any_str, any_str),
        st.builds("normalize('{}', '{}')".format, any_str, any_str),
        st.builds('normalize(source_str="{}")'.format, any_str),
        st.sampled_from(MALICIOUS),
        any_line,
    )


def _programs(line: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    indented = st.tuples(st.sampled_from(["", "", " ", "    "]), line).map("".join)
    truncated = st.builds(lambda s, k: s[:k], line, st.integers(0, 60))  # max_tokens cut-off
    return st.lists(st.one_of(indented, truncated), max_size=8).map("\n".join)


hostile_programs = _programs(
    st.one_of(_remove_calls(), _deleting_normalize_calls(), _hostile_lines())
)
removal_programs = _programs(_remove_calls())
deleting_programs = _programs(st.one_of(_remove_calls(), _deleting_normalize_calls()))
modes = st.sampled_from(["compat", "strict"])


def _mentions_normalize(program: str) -> bool:
    # NFKC: Python folds compatibility characters in identifiers ("ｎｏｒｍａｌｉｚｅ")
    return "normalize" in unicodedata.normalize("NFKC", program)


def _monotone_match(out: list[str], src: list[str], fits: Callable[[str, str], bool]) -> bool:
    """Is there an order-preserving injection out -> src with fits(out_line, src_line)?"""
    i = 0
    for line in out:
        while i < len(src) and not fits(line, src[i]):
            i += 1
        if i == len(src):
            return False
        i += 1
    return True


def _is_char_subsequence(small: str, big: str) -> bool:
    chars = iter(big)
    return all(c in chars for c in small)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(text=documents, program=hostile_programs, mode=modes)
def test_never_raises_never_adds_lines(text: str, program: str, mode: str) -> None:
    result = execute_program(text, program, level="chunk", mode=mode)  # type: ignore[arg-type]
    assert isinstance(result.branch, Branch)
    assert result.errors >= 0
    assert (result.text == "") == result.dropped
    if not result.dropped:
        assert len(result.text.split("\n")) <= len(text.split("\n"))
    if result.branch is Branch.DISCARDED:
        assert result.text == text
    assert execute_program(text, program, level="chunk", mode=mode) == result  # type: ignore[arg-type]

    doc = execute_program(text, program, level="doc", mode=mode)  # type: ignore[arg-type]
    assert doc.text in ("", text)
    assert doc.branch in (Branch.DROP_DOC, Branch.KEEP_DOC)


@settings(max_examples=300)
@given(text=documents, program=removal_programs, mode=modes)
def test_without_normalize_output_is_a_sublist_of_input_lines(
    text: str, program: str, mode: str
) -> None:
    if _mentions_normalize(program):  # a truncated call can still start with "normalize"
        return
    result = execute_program(text, program, mode=mode)  # type: ignore[arg-type]
    if result.dropped:
        return
    assert _monotone_match(result.text.split("\n"), text.split("\n"), str.__eq__)


@settings(max_examples=300)
@given(text=documents, program=deleting_programs, mode=modes)
def test_deleting_normalize_only_shortens_lines(text: str, program: str, mode: str) -> None:
    result = execute_program(text, program, mode=mode)  # type: ignore[arg-type]
    if result.dropped:
        return
    out = result.text.split("\n")
    assert _monotone_match(out, text.split("\n"), _is_char_subsequence)
    assert len(result.text) <= len(text)


@settings(max_examples=200)
@given(
    lines=st.lists(word_line, min_size=1, max_size=30),
    cuts=st.lists(st.integers(0, 29), max_size=3),
    program=st.lists(st.tuples(st.integers(0, 2), hostile_programs), max_size=3),
    mode=modes,
)
def test_multi_chunk_never_raises(
    lines: list[str], cuts: list[int], program: list[tuple[int, str]], mode: str
) -> None:
    text = "\n".join(lines)
    bounds = sorted({0, *(c for c in cuts if 0 < c < len(lines))})
    chunks = [Span(a, b - 1) for a, b in zip(bounds, [*bounds[1:], len(lines)], strict=True)]
    programs = ["" for _ in chunks]
    for index, body in program:
        programs[index % len(chunks)] += "\n" + body
    result = apply_chunk_programs(text, chunks, programs, mode=mode)  # type: ignore[arg-type]
    assert (result.text == "") == result.dropped
    if not result.dropped:
        assert len(result.text.split("\n")) <= len(lines)


# ---- the two modes agree on clean programs


safe_literal = st.text(
    st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=10
).filter(lambda s: is_safe_literal(s) and bool(s.strip()))


@st.composite
def clean_programs(draw: st.DrawFn, n_lines: int) -> str:
    calls = draw(
        st.lists(
            st.one_of(
                st.builds(
                    lambda a, b: RemoveLines(min(a, b), max(a, b)),
                    st.integers(0, n_lines - 1),
                    st.integers(0, n_lines - 1),
                ),
                st.builds(Normalize, safe_literal, st.one_of(st.just(""), safe_literal)),
                st.builds(NoOp, st.sampled_from(["keep_chunk", "skip_chunk", "untouch_doc"])),
            ),
            max_size=6,
        )
    )
    return "\n".join(call.render() for call in calls)


@settings(max_examples=300)
@given(data=st.data(), lines=st.lists(word_line, min_size=1, max_size=20))
def test_compat_and_strict_agree_on_clean_programs(data: st.DataObject, lines: list[str]) -> None:
    text = "\n".join(lines)
    program = data.draw(clean_programs(len(lines)))
    compat = execute_program(text, program, mode="compat")
    strict = execute_program(text, program, mode="strict")
    assert compat == strict
    assert compat.errors == 0


# ---- rule-written programs are clean


boilerplate_line = st.sampled_from(
    [
        "Home | News | Sports | Contact",
        "Share on Facebook | Tweet | Pin it",
        "© 2023 Example Media. All rights reserved.",
        "This website uses cookies to improve your experience. Accept cookies",
        "Subscribe to our newsletter",
        "11/5/2019 Rainbow - Wikipedia",
        "https://en.wikipedia.org/wiki/Rainbow 3/19",
        "[4]",
        "Menu",
        "Archives Select Month June 2019 May 2019",
    ]
)
trailing = st.sampled_from(
    ["", " Read More", " CLICK HERE TO BUY", " Read more »", " Read More, ok"]
)
body_line = st.builds(lambda w, t: w + t, word_line, trailing)


@settings(max_examples=200)
@given(
    lines=st.lists(st.one_of(body_line, boilerplate_line, any_line), min_size=1, max_size=40),
    cuts=st.lists(st.integers(1, 39), max_size=3),
)
def test_rule_programs_are_strict_clean_and_mode_independent(
    lines: list[str], cuts: list[int]
) -> None:
    text = "\n".join(lines)
    bounds = sorted({0, *(c for c in cuts if c < len(lines))})
    chunks = [Span(a, b - 1) for a, b in zip(bounds, [*bounds[1:], len(lines)], strict=True)]
    programs = RuleProgrammer().programs(text, chunks)
    strict = apply_chunk_programs(text, chunks, programs, mode="strict")
    compat = apply_chunk_programs(text, chunks, programs, mode="compat")
    assert strict.errors == 0
    assert compat == strict


# ---- nothing is ever run

_EVENTS: list[str] = []
_RECORDING = [False]


def _audit(event: str, _args: tuple[object, ...]) -> None:
    if _RECORDING[0]:
        _EVENTS.append(event)


sys.addaudithook(_audit)


@settings(max_examples=300)
@given(text=documents, program=hostile_programs, mode=modes)
def test_execution_only_parses(text: str, program: str, mode: str) -> None:
    """The only audited action allowed is ``compile`` (ast.parse): no exec, open, import."""
    _EVENTS.clear()
    _RECORDING[0] = True
    try:
        for level in ("chunk", "doc"):
            execute_program(text, program, level=level, mode=mode)  # type: ignore[arg-type]
    finally:
        _RECORDING[0] = False
    assert set(_EVENTS) <= {"compile"}


def test_hostile_calls_leave_no_trace(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    folder = str(tmp_path / "dir")
    program = "\n".join(
        [
            f"open({str(target)!r}, 'w')",
            f"__import__('pathlib').Path({str(target)!r}).touch()",
            f"normalize(source_str=open({str(target)!r}, 'w').name, target_str='')",
            f"remove_lines(line_start=__import__('os').mkdir({folder!r}), line_end=1)",
        ]
    )
    text = "some words " * 20
    for mode in ("compat", "strict"):
        for level in ("chunk", "doc"):
            execute_program(text, program, level=level, mode=mode)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
