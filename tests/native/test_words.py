"""The C word splitter (``gristmill/native/words.c``) against the regexes it replaces.

``words()`` used to be three polars ``replace_all`` passes and an ``extract_all`` (Rust's
regex crate); those regexes are kept here, unchanged, as the reference: the kernel must give
exactly their words on every real document and line of the samples (and of the benchmark's
file, built here), on strings written for every
alternative of every rule, and on random strings drawn from the characters the rules treat
specially. No difference is tolerated.
"""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from support.data import benchmark_documents

from gristmill.native import words as kernel
from gristmill.stages.filters.heuristics.text import WS, char_class, splitlines, words

SAMPLES = Path(__file__).resolve().parents[2] / "data_samples"

# -- the reference: the regexes words() ran before the kernel, verbatim ----------------------

#: Abbreviations spaCy's English exceptions keep whole with their final period.
_ABBREVIATIONS = (
    "Adm", "Ak", "Ala", "Apr", "Ariz", "Ark", "Aug", "Bros", "Calif", "Co", "Colo", "Conn",
    "Corp", "Dec", "Del", "Dr", "Feb", "Fla", "Ga", "Gen", "Gov", "Ia", "Id", "Ill", "Inc",
    "Ind", "Jan", "Jr", "Jul", "Jun", "Kan", "Kans", "Ky", "La", "Ltd", "Mar", "Mass", "Md",
    "Messrs", "Mich", "Minn", "Miss", "Mo", "Mont", "Mr", "Mrs", "Ms", "Mt", "Neb", "Nebr",
    "Nev", "Nov", "Oct", "Okla", "Ore", "Pa", "Prof", "Rep", "Rev", "Sen", "Sep", "Sept", "St",
    "Tenn", "Va", "Wash", "Wis", "co", "vs",
)  # fmt: skip
#: Symbols spaCy splits off wherever they stand.
_ICONS = "°®©™♪♫○●■□▪•→←↑↓★☆✓✔\ufffc\ufffd"
#: Characters spaCy peels off the start or end of a whitespace-separated chunk one at a time
#: (its prefix and suffix punctuation, quotes, brackets, currency); anything else stays
#: inside the chunk's core token.
_AFFIXES = (
    "…,:;!?¿؟¡()[]{}<>_#*&。？！，、；：～·।،۔؛٪'\"”“`‘´’‚„»«「」『』（）〔〕【】《》〈〉⟦⟧"
    "$£€¥฿₽﷼₴₠₡₢₣₤₥₦₧₨₩₪₫₭₮₯₰₱₲₳₵₶₷₸₹₺₻₼₾₿§%=—–+."
)
#: A period only ever leaves the end of a chunk; currency signs, "§", "=" and "+" only the
#: start (spaCy splits them off the end only after a digit, which we do not model).
_START = f"[^{WS}{char_class(set(_AFFIXES) - {'.'})}]"
_END = f"[^{WS}{char_class(set(_AFFIXES) - set('$£€¥§=+'))}]"
_CORE = f"[^{WS}{char_class(_AFFIXES)}]"
#: One alternative per token shape, tried left to right: URLs, dotted abbreviations,
#: clitics (split off beforehand), ellipses, a chunk core (starts and ends with a non-affix
#: character, may hold anything but whitespace inside), or a single affix character.
WORD_PATTERN = "|".join(
    (
        rf"(?:https?://|www\.)[^{WS}]*[\w/]",
        r"(?-u:\b)(?:" + "|".join(_ABBREVIATIONS) + r")\.",
        r"(?-u:\b)(?:\p{L}\.){2,}",
        rf"\p{{L}}\.[^{WS}]*{_CORE}",
        r"(?-u:\b)\p{L}\.",
        r"(?i:n['’]t)",
        r"['’](?i:s|ll|re|ve|d|m)(?-u:\b)",
        r"……",
        r"\.{2,}",
        # spaCy's lowercase class has no Georgian: a final period stays on the word.
        r"\p{Georgian}+\.",
        rf"{_START}(?:[^{WS}]*{_END})?",
        rf"[^{WS}]",
    )
)
#: spaCy splits English clitics ("do n't", "it 's") off a chunk's core, and infixes: hyphens,
#: slashes, colons after a letter or digit and before a letter; arithmetic signs between
#: digits. Never inside a URL: the URL alternative writes it back unchanged (the spaces its
#: empty groups add fall before whitespace, where no word sees them).
_URL = rf"((?:https?://|www\.)[^{WS}]*)"
_PRONOUN = "i|you|he|she|it|we|they|that|there|these|this|those|what|when|where|who|why|how"
_AUXILIARY = (
    "ai|are|ca|could|dare|did|does|do|had|has|have|is|may|might|must|need|ought|sha|should|"
    "was|were|wo|would"
)
#: Each alternative captures (head)(clitic); the replacement puts one space between.
_CLITIC = "|".join(
    (
        r"(\w)((?i:n['’]t)(?-u:\b))",
        r"(\w)(['’][sS])(?-u:\b)",
        rf"(?-u:\b)((?i:{_PRONOUN}))(['’](?i:d|ll|re|ve|m))(?-u:\b)",
        rf"(?-u:\b)((?i:{_AUXILIARY}))((?i:nt))(?-u:\b)",
        r"(?-u:\b)((?i:can))((?i:not))(?-u:\b)",
        r"(?-u:\b)((?i:gon|got))((?i:na|ta))(?-u:\b)",
        r"(?-u:\b)(1[0-2]|[1-9])([ap]m)(?-u:\b)",
    )
)
_CLITIC_REPLACEMENT = "$1$3$5$7$9$11$13 $2$4$6$8$10$12$14"
_LETTER_INFIX = "|".join(
    (
        _URL,
        r"([\p{L}\d])(-|–|—|~|/|:|<|>|=)(\p{L})",
        r"(\p{L})(,)(\p{L})",
        r"([\p{Ll}\"'”’])(\.)(\p{Lu})",
        rf"()(\.\.+|…|[{_ICONS}])()",
    )
)
_DIGIT_INFIX = _URL + r"|(\d)([-+*^])(\d)"


def _spaced(text: pl.Expr) -> pl.Expr:
    return (
        text.str.replace_all(_CLITIC, _CLITIC_REPLACEMENT)
        .str.replace_all(_LETTER_INFIX, "$1$2$5$8$11 $3$6$9$12 $4$7$10$13")
        .str.replace_all(_DIGIT_INFIX, "$1$2 $3 $4")
    )


def reference(texts: list[str | None]) -> list[list[str]]:
    frame = pl.DataFrame({"t": texts}, schema={"t": pl.String})
    found = frame.select(_spaced(pl.col("t")).str.extract_all(WORD_PATTERN))["t"].to_list()
    return [list(w) if w is not None else [] for w in found]


def ours(texts: list[str | None]) -> list[list[str]]:
    return words(pl.Series("t", texts, dtype=pl.String)).to_list()


def assert_same(texts: list[str | None]) -> None:
    expected, got = reference(texts), ours(texts)
    wrong = [(t, e, g) for t, e, g in zip(texts, expected, got, strict=True) if e != g]
    assert not wrong, f"{len(wrong)} texts differ, first: {wrong[0]!r}"[:2000]


# -- real text -------------------------------------------------------------------------------


def _documents(paths: list[Path]) -> list[str | None]:
    return pl.concat([pl.read_parquet(p, columns=["text"]) for p in paths])["text"].to_list()


def _lines(documents: list[str | None]) -> list[str]:
    frame = pl.DataFrame({"t": documents}, schema={"t": pl.String})
    return frame.select(splitlines(pl.col("t")))["t"].explode().drop_nulls().to_list()


def test_every_sample_document_and_line():
    documents = _documents(sorted(SAMPLES.glob("*.parquet")))
    assert len(documents) == 3548
    assert_same(documents)
    assert_same(_lines(documents))


def test_every_benchmark_document_and_line(tmp_path: Path):
    """The benchmark's file (the samples repeated past two 4096-row batches)."""
    documents = _documents([benchmark_documents(tmp_path / "bench.parquet", 9000)])
    assert_same(documents)
    assert_same(_lines(documents))


# -- every alternative of every rule ---------------------------------------------------------

CLITICS = [
    # (\w)(n't\b), any case, both apostrophes; at an ASCII boundary next to non-ASCII letters
    "don't DON'T Don’t doN'T can't won't ain't isn'tx isn't_ n't 'nt éN'Té don'tß café'n't",
    "x n't xn't xn'ta xn't1 xn't. ſn't n'tn't don'tdon't",
    # (\w)('[sS])\b
    "John's JOHN'S John’s it's It'S Josés José's x'sé x'ss x's_ x's1 x'ſ 's 5's é's",
    # pronouns + 'd 'll 're 've 'm, every pronoun, case, ASCII boundary on both sides
    "I'd i'D I'll I’LL you're YOU'RE he've she'm It'd we'll they're that'd there've",
    "these'm this'd those'll what're when've where'm who'd why'll how're Who'D",
    "xI'd I'dx éI'd I'dé _I'd I'd_ 1I'd I'd1 ſhe'd she'ſ ſhe'll aſhe'd I'lll I'mm",
    "it'll it'sx they'ret I’m I'M we’VE you'Ve",
    # auxiliaries + nt
    "aint arent cant couldnt darent didnt doesnt dont hadnt hasnt havent isnt maynt",
    "mightnt mustnt neednt oughtnt shant shouldnt wasnt werent wont wouldnt DONT DoNt",
    "xdont dontx dontsé éwont wontſ iſnt ſhouldnt doesNT don_t dont1 1dont wouldntt",
    # cannot, gonna, gotta
    "cannot CANNOT CanNot cannotx xcannot gonna gotta gonta gotna GONNA Gotta gonnaa",
    # hours
    "1am 10am 11pm 12pm 13pm 0am 9pm 1AM 10 am 1ama x1am 1am_ 112am 2pm. (3am) 7pmé é7pm",
]
INFIXES = [
    # letter/digit, infix, letter (the letter is consumed)
    "a-b a-b-c a-b-c-d 1-a a–b a—b a~b a/b a:b a<b a>b a=b é-ß 1:a ა-ბ a-1 -a a- a--b",
    "well-known self-driving e-mail x/y/z http-ish ab-cd/ef:gh 中-文 a-b-c-d-e-f",
    # letter , letter ; lower/quote . upper
    "a,b a,b,c 1,000 a,1 a.B end.Next 'quoted'.Next \"x\".Y ”.A ’.B e.g. U.S.A. a.b.c",
    # ellipses and icons
    "wait... wait.. . .... …… … a…b a...b ©2020 a®b ™ ♪♫ ○●■□▪• →←↑↓ ★☆✓✔ \ufffc \ufffd",
    # digits: - + * ^ between digits (the digit is consumed)
    "1-2 1-2-3 1+2 2*3 2^8 1-2-3-4 3.14 1,000.5 -1 1- ١-٢ 1–2 10-20km COVID-19",
    # URLs: infixes inside stay, the URL word ends at \w or /
    "http://x.org/a-b https://a-b.com/c,d www.a-b.org http://x.org/a?b=1. http://",
    "www. www.x www.x. (http://x.org/a) xhttp://y.z https://x.y/... http://a.b/c-d-e/",
    "see:http://x.org a-www.b-c.org 1-https://x.y http://x.y.z/a..b http://é.org/ß",
]
WORDS = [
    "Dr. Mr. Mrs. Ms. Prof. St. Co. Colo. Conn. Corp. Messrs. vs. co. Inc. Ltd. Sept. Sep.",
    "Dr.X xDr. éDr. Dr.. Drx. DR. dr. Dr.Who 1Dr. _Dr.",
    "U.S. e.g. i.e. a.b.c. U.S.A éU.S. ß.é. a. b.c A.B.C.D.E. x.y.z.1",
    "a.bc a.b. a.b.c.d. é.x.y a.!! a.)b a.$ a.b$ a.(b) a.'s",
    "n't N'T n’t 's 'll 're 've 'd 'm 'S 'LL 'sx 's_ 'ſ 'ſa 'mé ’s",
    "…… ……… .. ... .... a.. ..a ..!",
    "ბ. ბავშვი. ბავშვიa. aბავშვი. ᲐᲑ. ⴀ. ბ.ბ. ბ ბ.",
    "($100) [1] {x} <a> «x» „x“ 'x' \"x\" ¿qué? ¡sí! $5 £5 5€ €5 §3 =x x= +1 1+ %5 5%",
    "x) (x ((x)) x.) x.. x.; x,, -x- —x— x—y ...x x... ?!x x?! #tag @user a&b *x* _x_",
    "中文字符。測試，還有！ 日本語の文章です。 한국어 텍스트입니다.",
    "e\u0301 cafe\u0301 a\u0301.b\u0301. \u0301x x\u0301's n\u0301't",
    "😀 a😀b 😀. 👍🏽 🇫🇷 x😀's",
    "a\x00b \x00 \x01x\x02 x\x7f \x1b[0m",
    "a\x1cb c\x1dd e\x1ef g\x1fh i\x85j k\xa0l m\u2028n o\u2029p q\u3000r s\u200bt u\u2060v",
    "Ⓐ Ⓑⓒ ⓐ's Ⓘ'd xⓃ'T Ⅻ Ⅻ's",
    "ſ ſ's ſ'S \u212a K's I\u212a",
    "",
    " ",
    "\t\n\x0b\x0c\r \x1c\x1d\x1e\x1f\x85\xa0",
]
EDGES: list[str | None] = [None, "", "x", None, "don't", "  don't  "]


@pytest.mark.parametrize("texts", [CLITICS, INFIXES, WORDS, EDGES])
def test_every_rule_on_strings_written_for_it(texts: list[str | None]):
    assert_same(texts)
    # Each word of a line also alone: no context from the rest of the line.
    assert_same([w for t in texts if t for w in t.split(" ")])


#: The characters the rules look at, and some they do not.
ALPHABET = [
    *"aAbBcdDeghiIlmMnNoOprRsStTuvwWxyz019_'’\".,:;!?-–—~/<>=+*^()[]$€§%…&#@ \t\n\x1c\x85\xa0",
    *"éßſ\u212aⒶⓝ中ა\u0301😀\x00©→",
    *("http://", "https://", "www.", "n't", "'s", "Dr.", "can", "not", "gon", "na", "12", "am"),
]


def test_random_strings_of_the_characters_the_rules_see():
    rng = random.Random(7)
    texts = ["".join(rng.choices(ALPHABET, k=rng.randrange(0, 30))) for _ in range(30_000)]
    assert_same(texts)


def test_a_ten_megabyte_document():
    rng = random.Random(3)
    pieces = [*ALPHABET, "word", " ", " ", "don't", "well-known", "a.b.c.", "http://x.org/a-b"]
    text = "".join(rng.choices(pieces, k=2_500_000))[:10_000_000]
    assert_same([text])
    assert_same(["a" * 10_000_000, "." * 5_000_000 + "a", "a.,.," * 2_000_000])


# -- the arrow interface ---------------------------------------------------------------------


def test_nulls_slices_chunks_and_both_offset_widths():
    texts = ["don't", None, "a-b-c", "", "Dr. Who"]
    expected = [["do", "n't"], [], ["a", "-", "b-c"], [], ["Dr.", "Who"]]
    assert ours(texts) == expected
    small = pa.array(texts, pa.string())
    assert words(pl.Series(small.slice(1, 3))).to_list() == expected[1:4]
    chunked = pl.concat([pl.Series(texts[:2]), pl.Series(texts[2:])], rechunk=False)
    assert words(chunked).to_list() == expected
    assert words(pl.Series("t", [], dtype=pl.String)).to_list() == []


def test_bad_buffers_raise_instead_of_crashing():
    offsets = pa.py_buffer(pa.array([0, 3, 9], pa.int64()).buffers()[1])
    with pytest.raises(ValueError):  # offsets past the data
        kernel.batch(2, 0, None, offsets, b"abc", True)
    with pytest.raises(ValueError):  # more rows than offsets
        kernel.batch(5, 0, None, offsets, b"abcdefghi", True)
    with pytest.raises(ValueError):  # validity too short
        kernel.batch(2, 8, b"\xff", offsets, b"abcdefghi", True)
    backwards = pa.py_buffer(pa.array([0, 3, 1], pa.int64()).buffers()[1])
    with pytest.raises(ValueError):
        kernel.batch(2, 0, None, backwards, b"abc", True)
    with pytest.raises(ValueError):  # not UTF-8
        kernel.batch(2, 0, None, offsets, b"ab\xff\xfe\xc0\x80xyz", True)
    with pytest.raises(ValueError):
        kernel.batch(-1, 0, None, offsets, b"abc", True)
