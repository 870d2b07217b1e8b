"""The rule programmer on real pages: boilerplate goes, the body stays, programs are clean."""

from __future__ import annotations

import gzip
import json

import pytest
from support.data import TEST_DATA
from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers

from gristmill.refiners.prox import (
    Branch,
    RuleProgrammer,
    RuleProgrammerConfig,
    apply_chunk_programs,
    build_chunk_prompts,
    execute_program,
    parse_strict_line,
)

DATA = TEST_DATA
RAINBOW = (DATA / "sources/wiki_en_rainbow_pdf_extract.txt").read_text(encoding="utf-8")
ALICE = (DATA / "sources/books_gutenberg_11_alice_in_wonderland.txt").read_text(encoding="utf-8")
with gzip.open(DATA / "web/dolma_provided_documents_000.json.gz", "rt") as _f:
    WEB = [json.loads(line)["text"] for line in _f]

RULES = RuleProgrammer()


def refine(text: str) -> str:
    result = execute_program(text, RULES.program(text), mode="strict")
    assert result.errors == 0
    return result.text


def kept_lines(text: str) -> set[str]:
    return set(refine(text).split("\n"))


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=1500, special_tokens=["<unk>", "<s>", "</s>"])
    tok.train_from_iterator([*ALICE.split("\n"), *"\n".join(WEB).split("\n")], trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", bos)]
    )
    return tok


def test_spec_document_gets_the_hand_written_program() -> None:
    """Worked example 1 of the compat executor tests is exactly what the rules write for D."""
    lines = [
        "Home | News | Sports | Contact",
        "The Quick Guide to Sourdough Bread",
        "Sourdough bread relies on a fermented starter of flour and water instead of commercial"
        " yeast. Click here to subscribe!",
        "Feed the starter daily for about a week until it doubles within six hours of feeding.",
        "Mix the dough, let it rest, fold it several times, and bake it in a very hot covered pot.",
        "Share on Facebook | Tweet | Pin it",
        "(c) 2023 Example Media. All rights reserved.",
    ]
    text = "\n".join(lines)
    assert RULES.program(text) == (
        "remove_lines(line_start=0, line_end=0)\n"
        'normalize(source_str=" Click here to subscribe!", target_str="")\n'
        "remove_lines(line_start=5, line_end=6)"
    )
    assert [e.rule for e in RULES.edits(text)[0]] == [
        "navigation",
        "trailing_phrase",
        "share_buttons+copyright",
    ]


def test_blog_page_loses_navigation_and_widgets() -> None:
    doc = WEB[0]
    kept = kept_lines(doc)
    for boilerplate in [
        "PPAA Home",
        "About Our Blog",
        "Commenting Policy",
        "Become a Volunteer",
        "Follow us on Twitter! Like us on Facebook! Subscribe to RSS! Receive PPAA updates!",
        "Abortion (66)",
        "Volunteers (18)",
    ]:
        assert boilerplate in doc.split("\n")
        assert boilerplate not in kept
    assert not any(line.startswith("Archives Select Month") for line in kept)
    assert not any(line.startswith("Posted in Sexual Health | Tagged") for line in kept)
    body = [line for line in doc.split("\n") if len(line.split()) >= 15]
    body = [line for line in body if not line.startswith(("Archives", "Posted in"))]
    assert len(body) >= 5
    assert all(line in kept for line in body)
    assert "STD Awareness: Is There an STD That Causes Maggots?" in kept
    assert "Maggots grow up to be flies." in kept


@pytest.mark.parametrize("index", range(len(WEB)))
def test_every_web_page_keeps_its_prose(index: int) -> None:
    doc = WEB[index]
    kept = kept_lines(doc)
    prose = [
        line
        for line in doc.split("\n")
        if len(line.split()) >= 12
        and line.rstrip().endswith((".", "?", "”", '"'))  # "!" ends calls to action
        and "©" not in line
        and "cookie" not in line.lower()
    ]
    assert all(line in kept for line in prose)


def test_trailing_links_are_cut_from_list_items() -> None:
    doc = WEB[9]
    out = refine(doc)
    assert "CLICK HERE TO BUY" not in out
    assert "951. Satch Plays Fats: The Music of Fats Waller – Louis Armstrong (Columbia, 1955)" in (
        out.split("\n")
    )
    assert "Read More" not in refine(WEB[4])


def test_footers_and_share_bars() -> None:
    out = kept_lines(WEB[5])
    assert "Copyright © 2020 | AV Conversion Services | All Rights Reserved." not in out
    assert "Twitter Facebook Pinterest Youtube Instagram" not in out
    assert "Amory" not in out  # the 64-line list of towns
    assert "© 2014 Canadian Lawyers for International Human Rights" not in kept_lines(WEB[3])
    assert "Powered by WordPress and Dynamic News." not in kept_lines(WEB[7])


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("Subscribe to our NEWSLETTER for weekly updates", "subscription"),
        ("\u017fubscribe to receive our weekly updates", "subscription"),  # long s
        ("We use COOKIES to improve your browsing experience.", "cookie_notice"),
        ("Share on Facebook and Twitter", "share_buttons"),
        ("ALL RIGHTS RESERVED by the authors", "copyright"),
        ("Home | About | Contact | Blog", "navigation"),
        ("Home \u00bb About \u00bb Contact", "navigation"),
        ("The newsletter of the society was printed in Boston for thirty years.", None),
    ],
)
def test_line_rules_see_every_case_and_script(line: str, rule: str | None) -> None:
    """The word prefilters in front of the patterns must never hide a match: upper case,
    non-ASCII separators, and Unicode case folding (the long s matches "s" case-insensitively)
    get the rule the patterns alone give."""
    text = f"{line}\n{ALICE[:400]}"
    assert RULES.classify(text)[0] == rule


def test_pdf_page_headers_and_footers_are_removed() -> None:
    out = refine(RAINBOW)
    assert "11/5/2019 Rainbow - Wikipedia" in RAINBOW
    assert "Rainbow - Wikipedia" not in out
    assert "https://en.wikipedia.org/wiki/Rainbow" not in out
    assert "A rainbow is a meteorological phenomenon that is" in out.split("\n")
    assert len(out.split()) >= 0.9 * len(RAINBOW.split())


def test_clean_prose_is_left_alone() -> None:
    assert RULES.program(ALICE) == "keep_chunk()"
    assert refine(ALICE) == ALICE


def test_programs_are_clean_and_mode_independent_across_chunks(tokenizer: Tokenizer) -> None:
    for doc in [*WEB, RAINBOW]:
        chunks = build_chunk_prompts(doc, tokenizer, budget=300)
        programs = RULES.programs(doc, chunks)
        assert len(programs) == len(chunks)
        for chunk, program in zip(chunks, programs, strict=True):
            for line in program.split("\n"):
                parsed = parse_strict_line(line)
                assert parsed.errors == 0, (line, parsed.reason)
                start = getattr(parsed.call, "start", chunk.first_line)
                end = getattr(parsed.call, "end", chunk.last_line)
                assert chunk.first_line <= start <= end <= chunk.last_line
        strict = apply_chunk_programs(doc, chunks, programs, mode="strict")
        compat = apply_chunk_programs(doc, chunks, programs, mode="compat")
        assert strict.errors == 0
        assert compat == strict
        # chunking does not change what the rules remove
        assert strict.text == execute_program(doc, RULES.program(doc), mode="strict").text


def test_every_edit_names_its_rule_and_lines() -> None:
    doc = WEB[2]
    lines = doc.split("\n")
    (edits,) = RULES.edits(doc)
    assert edits
    for edit in edits:
        assert edit.rule
        assert edit.lines
        assert edit.program_line == edit.call.render()
    assert edits[0].rule == "navigation"
    assert [lines[i] for i in edits[0].lines] == ["Skip to:[Main Navigation | Page Content]"]
    labels = RULES.classify(doc)
    assert len(labels) == len(lines)
    assert {i for e in edits for i in e.lines} == {i for i, lab in enumerate(labels) if lab}


def test_config_controls_the_short_line_rule() -> None:
    doc = WEB[5]
    strict_rules = RuleProgrammer(RuleProgrammerConfig(short_run_min_lines=1000))
    out = execute_program(doc, strict_rules.program(doc), mode="strict").text
    assert "Amory" in out.split("\n")


def test_boilerplate_only_page_is_dropped() -> None:
    doc = WEB[8]  # a login wall of a booking system
    result = execute_program(doc, RULES.program(doc), mode="strict")
    assert result.branch in (Branch.APPLIED, Branch.DROP_SHORT, Branch.DROP_RATIO)
    page = "\n".join(["Home", "About", "Contact", "Blog", "© 2024 Example Inc."])
    result = execute_program(page, RULES.program(page), mode="compat")
    assert result.dropped
