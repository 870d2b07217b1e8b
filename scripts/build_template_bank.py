"""Build the starter FineInstructions template bank from real user queries.

Reads the query files below from ORIGIN (``shared/data`` or the repository's ``tests/data``;
plain or ``.gz``), turns each query into a template with ``<fi>...</fi>`` variables and writes
``gristmill/templates/starter_bank.jsonl`` (one template per line, with its provenance)::

    python scripts/build_template_bank.py ORIGIN [--out FILE] [--generator CONFIG.yaml]

With no model, queries are made generic by the transparent rules in this file, written for
the shapes of the queries we have:

* search-engine questions (Natural Questions, lower-cased): a *frame* per question shape
  (``who plays X in Y``, ``how many seasons of X are there``...) keeps the wording of the
  question and turns its subject into variables whose description is picked from cue words
  in the span (a span about a ``song`` is a song title, one naming a ``cup`` a competition);
  years, season numbers and other numbers become their own variables;
* written instructions (Self-Instruct, Vicuna-bench, MT-Bench): the object the instruction
  works on (``the given email``, ``the following sentence``), quoted strings, numbers,
  capitalised names and the topic after ``about``/``on`` become variables, and a few question
  frames (``How can I improve my X?``) cover the rest;

and a query no rule makes generic is dropped (its count is printed). Every template carries a
rule-built *compatible document description* (what kind of document could fill its variables
and answer it), which is what the matcher embeds. Every template passes
``gristmill.instructions.bank.validate_template`` against its own query; exact duplicates keep
the first query as provenance.

``--generator`` runs the released templatizer (or any model) instead, through gristmill's
``Generator`` config (see ``docs/fineinstructions.md``); its output goes through the same
strict JSON parsing and validation as the ``templatize`` stage.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "gristmill" / "templates" / "starter_bank.jsonl"

#: (file under ORIGIN/queries, licence, how to read the query text out of a row)
SOURCES: list[tuple[str, str, Callable[[dict], str | None]]] = [
    ("nq_open_dev.jsonl", "CC BY-SA 3.0", lambda r: r.get("question")),
    ("self_instruct_seed_tasks.jsonl", "Apache-2.0", lambda r: r.get("instruction")),
    (
        "self_instruct_user_oriented_instructions.jsonl",
        "Apache-2.0",
        lambda r: r.get("instruction"),
    ),
    ("vicuna_bench_questions.jsonl", "Apache-2.0", lambda r: (r.get("turns") or [None])[0]),
    ("mt_bench_questions.jsonl", "Apache-2.0", lambda r: (r.get("turns") or [None])[0]),
]

# --------------------------------------------------------------------------------------------
# Variable descriptions picked from cue words in the span a variable replaces.
# --------------------------------------------------------------------------------------------

#: (cue regex, description), first match wins; used for the subject of a question frame.
KINDS: list[tuple[str, str]] = [
    (r"\b(song|lyrics|anthem|hymn|carol)\b", "title of a song"),
    (r"\b(album|record)\b", "title of a music album"),
    (r"\b(movie|film)\b", "title of a film"),
    (r"\b(tv|show|series|sitcom|episode)\b", "title of a television series"),
    (r"\b(book|novel|poem|play|story)\b", "title of a book or other literary work"),
    (
        r"\b(super bowl|world cup|world series|championship|cup|league|olympics|tournament|"
        r"grand prix|open|bowl|playoffs|final|finals|marathon|race|premiership|"
        r"nba|nfl|nhl|mlb|ipl)\b",
        "name of a sports competition or league",
    ),
    (
        r"\b(award|awards|prize|oscar|grammy|emmy|medal|trophy|mvp|ballon)\b",
        "name of an award or prize",
    ),
    (r"\b(election|vote|referendum)\b", "an election or vote"),
    (
        r"\b(war|battle|revolution|invasion|siege|crisis)\b",
        "name of a war, battle or historical conflict",
    ),
    (
        r"\b(act|amendment|law|treaty|constitution|bill|declaration|court|case)\b",
        "name of a law, treaty or legal case",
    ),
    (
        r"\b(president|prime minister|king|queen|governor|mayor|senator|chancellor|pope|ceo|"
        r"chief|minister|secretary|speaker)\b",
        "a political or official position",
    ),
    (
        r"\b(team|club|united|city|fc|lakers|yankees|eagles|patriots|cowboys)\b",
        "name of a sports team",
    ),
    (
        r"\b(river|mountain|mount|lake|ocean|sea|island|desert|volcano|canyon|falls|range)\b",
        "name of a natural feature such as a river, mountain or lake",
    ),
    (
        r"\b(state|country|city|county|province|capital|town|village|region|nation)\b",
        "name of a country, state, city or other place",
    ),
    (
        r"\b(tower|bridge|building|wall|palace|castle|church|cathedral|temple|stadium|dam|"
        r"statue|museum|monument|canal|airport|station)\b",
        "name of a building, structure or landmark",
    ),
    (r"\b(company|corporation|brand|inc|bank|airline|store)\b", "name of a company or brand"),
    (r"\b(university|college|school|academy)\b", "name of a university or school"),
    (r"\b(disease|syndrome|cancer|virus|infection|disorder)\b", "a disease or medical condition"),
    (
        r"\b(cell|cells|organ|gland|muscle|bone|blood|heart|brain|liver|kidney|skin|sac|"
        r"nerve|tissue|membrane)\b",
        "a part of the human body or a biological structure",
    ),
    (
        r"\b(acid|element|gas|mineral|metal|compound|molecule|protein|enzyme|hormone|"
        r"oxygen|carbon|water)\b",
        "a chemical substance or compound",
    ),
    (r"\b(character|hero|villain)\b", "name of a fictional character"),
    (
        r"\b(coach|player|actor|actress|singer|manager|owner|leader|captain|founder|director)\b",
        "a person's role or job",
    ),
    (r"\b(game|video game|console|xbox|playstation|nintendo)\b", "title of a video game"),
    (r"\b(car|truck|ship|plane|aircraft|train|rocket|vehicle)\b", "a vehicle or vessel"),
    (r"\b(god|goddess|religion|church|bible|prophet)\b", "a religion or religious figure"),
    (r"\b(language|word|name|term|phrase|abbreviation|symbol)\b", "a word, name or term"),
    (
        r"\b(dog|cat|bird|animal|species|fish|horse|insect|plant|tree|flower)\b",
        "an animal or plant species",
    ),
]


def kind(span: str, default: str) -> str:
    """The description of a span: the first KINDS cue in its head (the last two words before
    any prepositional phrase: "bridge at florida university" is a bridge), else in the whole
    span, else ``default``."""
    head = " ".join(re.split(r" (?:of|in|at|for|on|from) ", span)[0].split()[-2:])
    for text in (head, span):
        for cue, description in KINDS:
            if re.search(cue, text):
                return description
    return default


#: Cues for the span that names a creative work: its title is arbitrary words ("battle of the
#: sexes" is a film), so only a word that says what kind of work it is counts.
WORK_KINDS: list[tuple[str, str]] = [
    (r"\b(song|lyrics)\b", "title of a song"),
    (r"\balbum\b", "title of a music album"),
    (r"\b(movie|film)\b", "title of a film"),
    (r"\b(tv show|show|series|sitcom|season|episode)\b", "title of a television series"),
    (r"\b(book|novel)\b", "title of a book"),
    (r"\b(video game|game)\b", "title of a video game"),
]


def work_kind(span: str, default: str) -> str:
    """The description of a span naming a creative work: a WORK_KINDS cue, else ``default``."""
    for cue, description in WORK_KINDS:
        if re.search(cue, span):
            return description
    return default


# --------------------------------------------------------------------------------------------
# Question frames for search-engine questions (lower-cased, no punctuation).
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """One question shape: ``pattern`` (full match on the cleaned question) and the template
    it becomes. In ``template``, ``{1}``, ``{2}``... stand for the groups of ``pattern``,
    each written ``{n:default}`` to become a variable described by ``kind(group, default)``,
    or ``{n!fixed description}`` for a description that does not depend on the span.
    ``document`` is the compatible-document description, with ``{1}``... for the variables'
    descriptions."""

    pattern: str
    template: str
    document: str


_PERSON = "the name of a specific person, group or team"

FRAMES: list[Frame] = [
    Frame(
        r"who plays (.+?) (?:in|on) (.+)",
        "who plays {1!name of a character} in {2~title of a film or television series}",
        "A cast list, episode guide, review or encyclopedia article about {2} that names the "
        "actor who plays {1} in it.",
    ),
    Frame(
        r"who played (.+?) (?:in|on) (.+)",
        "who played {1!name of a character} in {2~title of a film or television series}",
        "A cast list, review or encyclopedia article about {2} that names the actor who "
        "played {1}.",
    ),
    Frame(
        r"who (?:starred|stars) in (.+)",
        "who starred in {1~title of a film or television series}",
        "A review, cast list or encyclopedia article about {1} that names its main actors.",
    ),
    Frame(
        r"the cast of (.+)",
        "the cast of {1~title of a film or television series}",
        "A cast list or article about {1} that lists its actors and the roles they play.",
    ),
    Frame(
        r"who (?:sings|sang|performed|performs) (?:the song )?(.+)",
        "who sings {1!title of a song}",
        "A music article, album review or encyclopedia entry about {1} that names the "
        "singer or band who recorded it.",
    ),
    Frame(
        r"who wrote (?:the song )?(.+?) lyrics",
        "who wrote the lyrics of {1!title of a song}",
        "A music article or encyclopedia entry about {1} that credits its lyricist or songwriter.",
    ),
    Frame(
        r"who wrote (.+)",
        "who wrote {1~title of a book, song or other written work}",
        "An article, review or encyclopedia entry about {1} that names its author or "
        "writer and when it was written.",
    ),
    Frame(
        r"who directed (.+)",
        "who directed {1~title of a film}",
        "A review or article about {1} that names its director and describes how it was made.",
    ),
    Frame(
        r"who (invented|discovered|created|developed|designed|founded|built|made) "
        r"(?:the )?(.+)",
        "who {1=} {2:an invention, discovery or creation}",
        "A history or encyclopedia article about {2} that names the person or organisation "
        "who first made it and explains how it came about.",
    ),
    Frame(
        r"who won (?:the )?(.+?) (?:(?:in|of) )?(\d{4})",
        "who won {1:a competition, contest or award} in {2!a year}",
        "A report, results table or encyclopedia article about {1} that gives its winners "
        "year by year, including {2}.",
    ),
    Frame(
        r"who won (?:the )?(.+)",
        "who won {1:a competition, contest or award}",
        "A news report, results table or encyclopedia article about {1} that names its winners.",
    ),
    Frame(
        r"who has (?:won|scored|had) the most (.+?) in (.+)",
        "who has the most {1!a kind of achievement or statistic} in "
        "{2:a sport, league or competition}",
        "A record book, statistics table or article on {2} that lists who holds the "
        "record for {1}.",
    ),
    Frame(
        r"who has the most (.+)",
        "who has the most {1!a kind of achievement or record}",
        "A record list or article that ranks people or teams by {1} and names the leader.",
    ),
    Frame(
        r"who is the (?:current )?(.+?) of (?:the )?(.+)",
        "who is the {1!a role or position} of {2:an organisation, country or team}",
        "An official page, news article or encyclopedia entry about {2} that names who "
        "holds the role of {1} and since when.",
    ),
    Frame(
        r"who was the (?:first )?(.+?) of (?:the )?(.+)",
        "who was the first {1!a role or position} of {2:an organisation, country or team}",
        "A history or encyclopedia article about {2} that lists the people who held the "
        "role of {1}, starting with the first.",
    ),
    Frame(
        r"who (?:is|was) (.+?) (?:married to|dating)",
        "who is {1!the name of a famous person} married to",
        "A biography or news article about {1} that describes their personal life and "
        "spouse or partner.",
    ),
    Frame(
        r"who (?:is|was) the voice of (.+?) (?:in|on) (.+)",
        "who is the voice of {1!name of an animated character} in "
        "{2~title of a film, series or video game}",
        "A cast list or article about {2} that names the voice actors, including who voices {1}.",
    ),
    Frame(
        r"who (?:did|does) the voice of (.+)",
        "who does the voice of {1!name of an animated character}",
        "A cast list or article that names the voice actor behind {1}.",
    ),
    Frame(
        r"who (?:is|was) the (.+?) in (.+)",
        "who is the {1!a role or character} in {2~title of a film, series, book or event}",
        "An article, summary or cast list about {2} that identifies who the {1} is.",
    ),
    Frame(
        r"who (?:owns|bought|runs) (?:the )?(.+)",
        "who owns {1:name of a company, team or property}",
        "A business news article or company profile of {1} that names its owner and "
        "describes changes of ownership.",
    ),
    Frame(
        r"who (?:dies|died) in (.+)",
        "who dies in {1~title of a film, book or television series}",
        "A plot summary or episode recap of {1} that describes which characters die and how.",
    ),
    Frame(
        r"who (?:was|is) (.+?) named after",
        "who was {1:a place, building or thing} named after",
        "A history or encyclopedia article about {1} that explains the origin of its name.",
    ),
    Frame(
        r"who (?:is|was|are|were) the (.+)",
        "who is the {1!a role, title or group}",
        "An article or reference page that identifies the {1} and gives background on them.",
    ),
    Frame(
        r"when was the last time (?:the )?(.+?) (?:won|win|were in|was in|made|went to) "
        r"(?:the )?(.+)",
        "when was the last time {1!name of a sports team or athlete} won "
        "{2:name of a sports competition or title}",
        "A sports history article or results list for {2} that shows the years {1} won "
        "it, up to the most recent.",
    ),
    Frame(
        r"when was the last time (.+)",
        "when was the last time {1!an event that happens from time to time}",
        "A news article, timeline or history page that lists past occurrences of {1} and "
        "the date of the most recent one.",
    ),
    Frame(
        r"when (?:was|were) (?:the )?(.+?) (?:built|constructed|completed|finished|opened)",
        "when was {1:name of a building, structure or landmark} built",
        "A history or visitor guide about {1} that gives when and by whom it was built.",
    ),
    Frame(
        r"when (?:was|were) (?:the )?(.+?) (?:invented|discovered|created|founded|"
        r"established|formed)",
        "when was {1:an invention, discovery or organisation} invented",
        "A history or encyclopedia article about {1} that dates its invention or founding "
        "and tells the story behind it.",
    ),
    Frame(
        r"when (?:was|were) (?:the )?(.+?) (?:released|published|written|made)",
        "when was {1~title of a film, book, song or product} released",
        "A review, article or catalogue entry about {1} that gives its release or "
        "publication date.",
    ),
    Frame(
        r"when did (?:the )?(.+?) (?:come out|release|premiere|air)",
        "when did {1~title of a film, book, song, game or product} come out",
        "A review, announcement or article about {1} that gives its release date.",
    ),
    Frame(
        r"when (?:does|will|is) (?:the )?(?:new )?(?:season|series) (\d+) of (.+?) "
        r"(?:come out|start|air|premiere|release)",
        "when does season {1!a season number} of {2!title of a television series} come out",
        "A television news article or episode guide for {2} that gives the premiere date "
        "of season {1}.",
    ),
    Frame(
        r"when (?:does|will|is) (?:the )?(?:new )?(?:season|series) of (.+?) "
        r"(?:come out|start|air|premiere|release)",
        "when does the new season of {1!title of a television series} come out",
        "A television news article or episode guide for {1} that announces when its next "
        "season premieres.",
    ),
    Frame(
        r"when (?:does|will|is) (?:the )?(.+?) (?:come out|start|air|premiere|release|"
        r"open|begin|end)",
        "when does {1~a film, series, event or product} come out",
        "An announcement, schedule or news article about {1} that gives its start or release date.",
    ),
    Frame(
        r"when did (?:the )?(.+?) (?:start|begin)",
        "when did {1:an event, war or movement} start",
        "A history article or timeline of {1} that gives when it began and what started it.",
    ),
    Frame(
        r"when did (?:the )?(.+?) end",
        "when did {1:an event, war or movement} end",
        "A history article or timeline of {1} that gives when and how it ended.",
    ),
    Frame(
        r"when did (?:the )?(.+?) become (?:a |an )?(.+)",
        "when did {1:a place, organisation or thing} become {2!a status it acquired}",
        "A history article about {1} that dates when it became {2} and explains why.",
    ),
    Frame(
        r"when did (?:the )?(.+?) win (?:the |their )?(?:last |first )?(.+)",
        "when did {1!name of a sports team or athlete} win "
        "{2:name of a sports competition or title}",
        "A sports history or results page for {2} that lists the years {1} won it.",
    ),
    Frame(
        r"when did (.+?) die",
        "when did {1!name of a famous person} die",
        "A biography or obituary of {1} that gives the date and circumstances of their death.",
    ),
    Frame(
        r"when (?:is|was) (.+?) (?:born|birthday)",
        "when was {1!name of a famous person} born",
        "A biography of {1} that gives their date and place of birth.",
    ),
    Frame(
        r"when (?:is|was) (?:the )?(.+?) (?:held|celebrated|played)",
        "when is {1:a holiday, festival or event} held",
        "A calendar, guide or article about {1} that gives when it takes place each year.",
    ),
    Frame(
        r"when did (?:the )?(.+)",
        "when did {1!an event or change}",
        "A history article, timeline or news report that dates {1} and describes it.",
    ),
    Frame(
        r"when (?:is|was|are|were) (?:the )?(.+)",
        "when is {1!an event, date or period}",
        "A schedule, timeline or reference page that gives the date of {1}.",
    ),
    Frame(
        r"where (?:is|was) (?:the )?(.+?) (?:located|found|situated)",
        "where is {1:a place, landmark or organisation} located",
        "A travel guide, map description or encyclopedia entry about {1} that gives its location.",
    ),
    Frame(
        r"where (?:was|were) (?:the )?(.+?) (?:filmed|shot|recorded)",
        "where was {1~title of a film, series or music video} filmed",
        "A production article or review of {1} that describes its filming locations.",
    ),
    Frame(
        r"where (?:does|did) (?:the )?(.+?) take place",
        "where does {1~title of a film, book, series or event} take place",
        "A plot summary, review or guide to {1} that describes its setting.",
    ),
    Frame(
        r"where (?:does|did) (?:the )?(.+?) (?:come from|originate)",
        "where does {1:a food, word, custom or product} come from",
        "A history or etymology article about {1} that explains its origin.",
    ),
    Frame(
        r"where (?:does|do|did) (?:the )?(.+?) (?:start|begin|end|flow)",
        "where does {1:name of a river, road or route} start and end",
        "A geography or encyclopedia article about {1} that traces its course from "
        "beginning to end.",
    ),
    Frame(
        r"where (?:is|are|was|were|does|do|did) (?:the )?(.+)",
        "where is {1!a place, object or event}",
        "A guide, map description or encyclopedia article that says where {1} is or happens.",
    ),
    Frame(
        r"how many seasons (?:of|are there of|are in|does) (.+?)(?: are there| is there| "
        r"have)?",
        "how many seasons of {1!title of a television series} are there",
        "An episode guide or television article about {1} that lists its seasons and episodes.",
    ),
    Frame(
        r"how many episodes (?:are )?(?:in|of|does) (?:season (\d+) of )?(.+?)(?: are there"
        r"| have| season \d+)?",
        "how many episodes are in {2!title of a television series}",
        "An episode guide for {2} that lists every season with its number of episodes.",
    ),
    Frame(
        r"how many (.+?) (?:are there )?in (?:the )?(.+)",
        "how many {1!a kind of thing to count} are there in {2:a place, group or object}",
        "A reference article or fact sheet about {2} that gives the number of {1}.",
    ),
    Frame(
        r"how many (.+?) (?:has|have|did) (.+?) (?:won|win|had|have|scored)",
        "how many {1!a kind of achievement} has {2!name of a person or team} won",
        "A career statistics page or biography of {2} that counts their {1}.",
    ),
    Frame(
        r"how many (.+)",
        "how many {1!a kind of thing to count}",
        "A reference article, table or fact sheet that gives the number of {1}.",
    ),
    Frame(
        r"how (?:old|tall) is (.+)",
        "how old is {1!name of a famous person or thing}",
        "A biography or fact sheet about {1} that gives their age, height or other "
        "vital statistics.",
    ),
    Frame(
        r"how long (?:is|was|does|did) (?:the )?(.+)",
        "how long is {1:a film, event, journey or structure}",
        "A reference page, review or guide to {1} that gives its length or duration.",
    ),
    Frame(
        r"how much (?:does|did|is|was) (?:the )?(.+)",
        "how much does {1:a product, service or thing} cost",
        "A price list, review or news article about {1} that gives its cost or amount.",
    ),
    Frame(
        r"how (?:do|does|did|can) (?:you |a |an |the )?(.+)",
        "how does {1!a process or task} work",
        "A how-to guide, explainer or textbook section that explains step by step how {1}.",
    ),
    Frame(
        r"what (?:type|kind|sort) of (.+?) (?:is|are|was|were) (?:a |an |the )?(.+)",
        "what kind of {1!a category} is {2!a specific thing or creature}",
        "An encyclopedia article or guide about {2} that classifies it as a kind of {1} "
        "and describes it.",
    ),
    Frame(
        r"what (?:is|are) the meaning of (?:the )?(.+)",
        "what is the meaning of {1:a word, name, phrase or symbol}",
        "A dictionary entry, etymology note or article that explains what {1} means and "
        "where it comes from.",
    ),
    Frame(
        r"what (?:does|do) (?:the )?(.+?) (?:stand for|mean)",
        "what does {1:an abbreviation, word or symbol} mean",
        "A glossary, dictionary or explainer that spells out what {1} stands for or means.",
    ),
    Frame(
        r"what is the full form of (.+)",
        "what is the full form of {1!an abbreviation}",
        "A glossary or reference page that expands {1} and explains what it refers to.",
    ),
    Frame(
        r"what (?:is|was) the capital (?:city )?of (.+)",
        "what is the capital of {1!name of a country or state}",
        "A geography or encyclopedia article about {1} that names its capital city.",
    ),
    Frame(
        r"what (?:is|was) the population of (.+)",
        "what is the population of {1!name of a country, state or city}",
        "A census report, fact sheet or encyclopedia article about {1} that gives its population.",
    ),
    Frame(
        r"what (?:is|are) the (?:main )?(?:function|role|purpose|job) of (?:the |a |an )?(.+)",
        "what is the function of {1:a part of a system or organism}",
        "A textbook section or explainer about {1} that describes what it does and how.",
    ),
    Frame(
        r"what (?:is|are) the (?:main )?(?:cause|causes) of (?:the |a |an )?(.+)",
        "what are the causes of {1:an event, disease or phenomenon}",
        "An explainer, textbook section or history article that sets out why {1} happens "
        "or happened.",
    ),
    Frame(
        r"what (?:is|are) the (?:main )?(?:difference|differences) between (.+?) and (.+)",
        "what is the difference between {1!first thing being compared} and "
        "{2!second thing being compared}",
        "An explainer or comparison article that describes {1} and {2} and how they differ.",
    ),
    Frame(
        r"what (?:is|was) the name of (?:the )?(.+?) in (.+)",
        "what is the name of the {1!a character, place or object} in "
        "{2~title of a film, book or series}",
        "A plot summary, character list or article about {2} that names its {1}.",
    ),
    Frame(
        r"what (?:is|was) the (.+?) of (?:the |a |an )?(.+)",
        "what is the {1!an attribute or property} of {2:a thing, place or person}",
        "A reference article or fact sheet about {2} that states its {1}.",
    ),
    Frame(
        r"what (?:year|date) (?:did|was|were) (?:the )?(.+)",
        "what year did {1!an event}",
        "A history article or timeline that gives the year of {1}.",
    ),
    Frame(
        r"what happened (?:to|at|in) (?:the )?(.+)",
        "what happened to {1:a person, place or thing}",
        "A news article or history that recounts what became of {1}.",
    ),
    Frame(
        r"what (?:channel|network|station) (?:is|was) (?:the )?(.+?) on",
        "what channel is {1~title of a television show or sports event} on",
        "A television listing or broadcast schedule for {1} that names the channel or "
        "network showing it.",
    ),
    Frame(
        r"what (?:percentage|percent|proportion) of (.+)",
        "what percentage of {1!a population or quantity}",
        "A statistical report or fact sheet that gives the share of {1}.",
    ),
    Frame(
        r"what (?:is|are|was|were) (?:a |an |the )?(.+?) (?:made|used) (?:of|for)",
        "what is {1:a material, tool or object} used for",
        "A guide, explainer or encyclopedia entry about {1} that describes its uses or what "
        "it is made of.",
    ),
    Frame(
        r"what (?:is|are|was|were) (?:a |an |the )?(.+)",
        "what is {1!a concept, thing or event}",
        "An encyclopedia entry, dictionary definition or explainer that defines {1} and "
        "describes it.",
    ),
    Frame(
        r"which (.+?) (?:is|was) the (.+)",
        "which {1!a kind of thing} is the {2!a superlative property}",
        "A ranking, record list or reference article that compares {1} and names the one "
        "that is the {2}.",
    ),
    Frame(
        r"why (?:is|are|was|were|do|does|did) (?:the )?(.+)",
        "why is {1!a fact or phenomenon}",
        "An explainer, textbook section or article that explains the reasons behind {1}.",
    ),
]

# --------------------------------------------------------------------------------------------
# Written instructions (Self-Instruct, Vicuna-bench, MT-Bench).
# --------------------------------------------------------------------------------------------

#: The objects instructions work on, and how their variable is described.
OBJECTS: dict[str, str] = {
    "email": "an email or message",
    "emails": "a set of emails or messages",
    "message": "a message or note",
    "text": "a piece of text",
    "sentence": "a sentence",
    "sentences": "a few sentences",
    "paragraph": "a paragraph of text",
    "passage": "a passage of text",
    "article": "an article or news story",
    "news": "a news story",
    "essay": "an essay",
    "story": "a story",
    "poem": "a poem",
    "review": "a product or service review",
    "reviews": "a set of reviews",
    "tweet": "a social media post",
    "post": "a social media or blog post",
    "word": "a word",
    "words": "a list of words",
    "phrase": "a phrase or expression",
    "idiom": "an idiom or expression",
    "question": "a question",
    "questions": "a set of questions",
    "list": "a list of items",
    "table": "a table of data",
    "data": "a set of data",
    "code": "a piece of code",
    "function": "a function or piece of code",
    "program": "a computer program",
    "query": "a query or search request",
    "recipe": "a recipe",
    "product": "a product",
    "products": "a set of products",
    "company": "a company or organisation",
    "topic": "a topic",
    "concept": "a concept or idea",
    "situation": "a situation or scenario",
    "scenario": "a situation or scenario",
    "problem": "a problem to solve",
    "statement": "a statement or claim",
    "argument": "an argument or claim",
    "document": "a document",
    "citation": "a paper citation",
    "title": "a title or headline",
    "name": "a name",
    "person": "a person",
    "people": "a group of people",
    "stereotype": "a stereotype or generalisation",
    "event": "an event",
    "movie": "a film",
    "book": "a book",
    "song": "a song",
    "job": "a job or position",
    "resume": "a resume or CV",
    "letter": "a letter",
    "dialogue": "a dialogue or conversation",
    "conversation": "a dialogue or conversation",
    "number": "a number",
    "numbers": "a set of numbers",
    "equation": "an equation or formula",
    "address": "an address",
    "instruction": "an instruction",
    "instructions": "a set of instructions",
    "description": "a description",
    "input": "an input text",
    "pairs": "a set of pairs of items",
    "keywords": "a set of keywords",
    "options": "a set of options",
    "document's": "a document",
    "item": "an item",
    "items": "a set of items",
}

_OBJECT_RE = re.compile(
    r"\b(?:the|this|these|a|an) (?:following|given|provided|above|below|input|attached)?"
    r"(?: \w+)?? ?("
    + "|".join(sorted(map(re.escape, OBJECTS), key=len, reverse=True))
    + r")\b(?=[,.:;?!]|$| (?:and|into|to|in|with|for|from|below|above|so|as|that|is|are|by|"
    r"using|based|if|or|according|more|less|than|while|without|on)\b)",
    re.I,
)
_GIVEN_RE = re.compile(r"\b(following|given|provided|above|below|input|attached)\b", re.I)

#: Capitalised names recognised by a small lexicon (description when it names one of these).
LEXICON: dict[str, str] = {
    **{
        w: "name of a programming language"
        for w in (
            "Python",
            "JavaScript",
            "Java",
            "C++",
            "Rust",
            "Go",
            "SQL",
            "HTML",
            "CSS",
            "TypeScript",
            "Ruby",
            "Perl",
            "PHP",
            "Swift",
            "Kotlin",
        )
    },
    **{
        w: "name of a country, region or city"
        for w in (
            "Hawaii",
            "Paris",
            "London",
            "Japan",
            "China",
            "France",
            "Italy",
            "Spain",
            "Germany",
            "India",
            "Canada",
            "Mexico",
            "Europe",
            "Asia",
            "Africa",
            "America",
            "New York",
            "California",
            "Tokyo",
            "Rome",
            "Egypt",
            "Brazil",
            "Australia",
            "Antarctica",
            "Russia",
            "Greece",
            "Seattle",
            "Chicago",
            "Boston",
            "Texas",
            "Florida",
            "Korea",
            "Peru",
            "United States",
            "USA",
            "UK",
            "Thailand",
            "Vietnam",
            "Iceland",
        )
    },
    **{
        w: "name of a company, app or product"
        for w in (
            "Google",
            "Gmail",
            "Grammarly",
            "Amazon",
            "Apple",
            "iPhone",
            "Microsoft",
            "Excel",
            "Word",
            "Twitter",
            "Facebook",
            "Instagram",
            "LinkedIn",
            "Netflix",
            "Spotify",
            "Tesla",
            "Airbnb",
            "Uber",
            "YouTube",
            "Reddit",
            "Slack",
            "Zoom",
            "GitHub",
            "Wikipedia",
            "Notion",
            "Tripadvisor",
            "Yelp",
            "Goodreads",
            "Quora",
            "Coursera",
            "Redfin",
            "Samsung",
            "Android",
            "Windows",
            "Linux",
            "MacOS",
            "Alexa",
            "Siri",
            "ChatGPT",
            "Fiverr",
            "Upwork",
            "Etsy",
            "eBay",
            "Strava",
            "Duolingo",
            "Pinterest",
            "TikTok",
            "Snapchat",
            "WhatsApp",
            "Telegram",
            "Discord",
            "Steam",
            "Tumblr",
            "Medium",
            "Overleaf",
            "Wolfram",
            "Jira",
            "Trello",
            "Asana",
            "Shopify",
            "Doordash",
            "Mailchimp",
            "Canva",
            "Figma",
            "Dropbox",
            "Instacart",
            "Sephora",
            "Nike",
            "IKEA",
            "Starbucks",
        )
    },
    **{
        w: "a month or season"
        for w in (
            "January",
            "February",
            "March",
            "April",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        )
    },
    **{
        w: "a day of the week"
        for w in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    },
    **{
        w: "a holiday or special occasion"
        for w in (
            "Christmas",
            "Halloween",
            "Thanksgiving",
            "Easter",
            "New Year's",
            "Valentine's Day",
            "Black Friday",
        )
    },
}

#: Question frames for written questions without a nameable object.
WRITTEN_FRAMES: list[Frame] = [
    Frame(
        r"how can i improve my (.+?)\??",
        "How can I improve my {1!a skill or personal ability}?",
        "A self-help guide, course material or article that explains practical ways to "
        "improve {1}.",
    ),
    Frame(
        r"how can i (?:increase|boost) my (.+?)(?: while .+)?\??",
        "How can I increase my {1!a personal quality or outcome}?",
        "A guide or article with practical advice for increasing {1}.",
    ),
    Frame(
        r"how can i develop my (.+?)\??",
        "How can I develop my {1!a skill or ability}?",
        "A guide, course outline or article on exercises and habits that develop {1}.",
    ),
    Frame(
        r"what are the most effective ways to (?:deal with|reduce|cope with|manage) (.+?)\??",
        "What are the most effective ways to deal with {1!a problem or difficult situation}?",
        "A guide, health article or self-help page that lists proven ways of dealing with {1}.",
    ),
    Frame(
        r"what are the (?:main )?differences between (.+?) and (.+?)\??",
        "What are the main differences between {1!first thing being compared} and "
        "{2!second thing being compared}?",
        "A comparison article or explainer that describes {1} and {2} side by side and "
        "sets out how they differ.",
    ),
    Frame(
        r"can you explain the basics of (.+?)\??",
        "Can you explain the basics of {1!a technical or scientific subject}?",
        "An introductory explainer, textbook chapter or tutorial that explains the basic "
        "ideas of {1}.",
    ),
    Frame(
        r"what are the (?:major |main )?challenges faced by (?:the )?(.+?)\??",
        "What are the major challenges faced by {1!an industry, sector or group}?",
        "A report, analysis or news feature on {1} that discusses the problems it faces.",
    ),
    Frame(
        r"what are the (?:potential |main |primary )?(?:benefits|advantages)"
        r"(?: and drawbacks| and disadvantages)? of (.+?)\??",
        "What are the benefits and drawbacks of {1!a practice, technology or choice}?",
        "An article, review or report that weighs the advantages and disadvantages of {1}.",
    ),
]

_TOPIC_RE = re.compile(
    r"\b(about|on the topic of|regarding) ((?:a |an |the )?[a-z][\w' -]{3,60}?)"
    r"(?=[,.;:?!]|$| and | that | which | with | in )"
)
_QUOTED_RE = re.compile(
    r"(?<![\w])[\"\u201c\u2018']([^\"\u201c\u201d\u2018\u2019]{2,80}?)"
    r"[\"\u201d\u2019'](?![\w])"
)
# A quantity: a number followed by a word ("7-day", "4 sentences"), not a term of a formula or
# an item of an enumeration ("4x^3", "1)").
_NUMBER_RE = re.compile(
    r"(?<![\w<^*/+=(-])(\d+(?:[.,]\d+)?(?:\s?-\s?\d+(?:[.,]\d+)?)?%?)(?=[ -][a-zA-Z])"
)
#: Words after which a quoted string is a label the answer must use, not a variable.
_LABEL_CUE = re.compile(
    r"\b(output|answer|respond|reply|label|format|categor\w*|or|with)\W*$", re.I
)
_YEAR_RE = re.compile(r"(?<![\w<])((?:1[5-9]|20)\d\d)(?![\w>])")
_CAPS_RE = re.compile(
    r"(?<![.!?:] )(?<!^)\b([A-Z][\w'+]*(?: (?:[A-Z][\w'+]*|of|the|and))*"
    r"(?<! of)(?<! the)(?<! and))"
)


def fi(description: str) -> str:
    return f"<fi>{description}</fi>"


def _fill(frame: Frame, match: re.Match[str]) -> tuple[str, str]:
    """The template and document description a frame makes of a matched question."""
    descriptions: dict[str, str] = {}

    def variable(spec: re.Match[str]) -> str:
        index, sep, default = spec.group(1), spec.group(2), spec.group(3)
        span = match.group(int(index)) or ""
        if sep == "=":
            return span  # a word of the question kept as it is (the verb, say)
        if sep == ":":
            description = kind(span, default)
        elif sep == "~":
            description = work_kind(span, default)
        else:
            description = default
        descriptions[index] = description
        return fi(description)

    template = re.sub(r"\{(\d+)([:!~=])([^}]*)\}", variable, frame.template)
    document = re.sub(
        r"\{(\d+)\}", lambda m: _a(descriptions.get(m.group(1), "it")), frame.document
    )
    return template, document


def _a(description: str) -> str:
    """A variable's description as a noun phrase inside a sentence ("a given song")."""
    d = description
    for prefix in ("the name of ", "title of ", "name of ", "a given ", "the ", "an ", "a "):
        if d.startswith(prefix):
            d = d[len(prefix) :]
    for article in ("a ", "an ", "the "):
        if d.startswith(article):
            d = d[len(article) :]
    return f"a given {d}"


def _plain_span(span: str | None) -> bool:
    """A span a variable can replace: a short noun phrase, not a clause (``the leader who
    signed the treaty`` would make a variable that hides the question)."""
    if span is None:
        return True
    words = span.split()
    return 0 < len(words) <= 6 and not {"who", "that", "which", "to", "when", "where"} & set(words)


def nq_template(question: str) -> tuple[str, str] | None:
    """Template and document description for a search-engine question, or None."""
    q = " ".join(question.lower().replace("?", "").split())
    for frame in FRAMES:
        match = re.fullmatch(frame.pattern, q)
        if match and all(_plain_span(g) for g in match.groups()):
            return _fill(frame, match)
    return None


def written_template(instruction: str) -> tuple[str, str] | None:
    """Template and document description for a written instruction or question, or None."""
    text = " ".join(instruction.split())
    if len(text) > 300 or "\n" in instruction.strip() or re.search(r"[=^{}]", text):
        # long, multi-part or formula/code instructions: no rule makes these generic well
        return None
    lowered = text.lower()
    for frame in WRITTEN_FRAMES:
        match = re.fullmatch(frame.pattern, lowered)
        if match:
            return _fill(frame, match)
    template = text
    objects: list[str] = []

    def obj(match: re.Match[str]) -> str:
        word = match.group(1).lower()
        if not _GIVEN_RE.search(match.group(0)) and not match.group(0).lower().startswith(
            ("the ", "this ", "these ")
        ):
            return match.group(0)
        objects.append(OBJECTS[word])
        return fi(OBJECTS[word])

    template = _OBJECT_RE.sub(obj, template, count=2)

    def quoted(match: re.Match[str]) -> str:
        if _LABEL_CUE.search(template[max(0, match.start() - 30) : match.start()]):
            return match.group(0)
        return fi("a quoted title, phrase or text")

    template = _QUOTED_RE.sub(quoted, template)
    template = _YEAR_RE.sub(lambda m: fi("a year"), template)
    template = _NUMBER_RE.sub(lambda m: fi("a number or amount"), template)

    names: list[str] = []

    def name(match: re.Match[str]) -> str:
        span = match.group(1)
        if span in ("I", "I'm", "I've", "I'd", "OK") or span.startswith("<"):
            return span
        description = LEXICON.get(span)
        if description is None:
            return span  # an unknown name is left alone rather than given a vague slot
        names.append(description)
        return fi(description)

    template = _CAPS_RE.sub(name, template)
    topics: list[str] = []
    if "<fi>" not in template:

        def topic(match: re.Match[str]) -> str:
            span = match.group(2)
            if len(span.split()) > 6 or span.split()[-1] in ("the", "a", "an", "my", "your"):
                return match.group(0)
            topics.append(span)
            return f"{match.group(1)} {fi('a topic or subject')}"

        template = _TOPIC_RE.sub(topic, template, count=1)
    if "<fi>" not in template:
        return None
    return template, _instruction_document(text, objects, names, bool(topics))


_VERB_KINDS: list[tuple[str, str]] = [
    (
        r"^(?:please )?(?:re)?write|^compose|^draft|^create|^generate|^come up|^make|^design|"
        r"^brainstorm|^suggest|^craft|^develop|^plan|^prepare|^imagine",
        "material to base new writing on",
    ),
    (
        r"^(?:please )?(?:rewrite|paraphrase|summari[sz]e|translate|correct|edit|proofread|"
        r"convert|shorten|simplify|format|change)",
        "the text to be transformed",
    ),
    (
        r"^(?:please )?(?:classify|identify|detect|extract|find|analy[sz]e|determine|decide|"
        r"tell|check|rate|sort|categori[sz]e|label|evaluate|judge)",
        "the input to be analysed",
    ),
    (
        r"^(?:please )?(?:explain|describe|give|list|what|how|why|who|when|where|which|can|is|"
        r"are|do|does)",
        "the facts needed for an answer",
    ),
]


def _instruction_document(text: str, objects: list[str], names: list[str], topic: bool) -> str:
    """A compatible-document description for an instruction, from its verb and variables."""
    lowered = text.lower()
    role = "the facts needed for an answer"
    for cue, what in _VERB_KINDS:
        if re.search(cue, lowered):
            role = what
            break
    things = objects + names + (["a given topic or subject"] if topic else [])
    subject = " and ".join(dict.fromkeys(_a(t) for t in things)) or "the subject of the request"
    if role == "the text to be transformed":
        return (
            f"A document that contains {subject} in full, such as a letter, post, report "
            f"or web page, whose wording can be reworked as the instruction asks."
        )
    if role == "the input to be analysed":
        return (
            f"A document that contains {subject}, such as a web page, post, article or "
            f"data listing, with enough detail to analyse or classify it as asked."
        )
    if role == "material to base new writing on":
        return (
            f"An article, guide, blog post or reference page about {subject} with facts, "
            f"examples and details that a new piece of writing could draw on."
        )
    return (
        f"An article, guide, explainer or reference page about {subject} that gives the "
        f"facts and explanations needed to answer the request."
    )


# --------------------------------------------------------------------------------------------


def read_queries(origin: Path) -> Iterator[tuple[str, int, str, str]]:
    """(file name, row number, licence, query text) for every query of every source."""
    for name, licence, pick in SOURCES:
        path = origin / "queries" / name
        if not path.exists():
            path = path.with_name(name + ".gz")
        if not path.exists():
            print(f"warning: {origin / 'queries' / name}(.gz) not found: skipped", file=sys.stderr)
            continue
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as fh:
            for row_no, line in enumerate(fh):
                if line.strip():
                    text = pick(json.loads(line))
                    if isinstance(text, str) and text.strip():
                        yield name, row_no, licence, text


def build_rules(origin: Path) -> tuple[list[dict], Counter[str]]:
    """The bank rows built by the rules, and counts of what happened to each query."""
    sys.path.insert(0, str(REPO_ROOT))
    from gristmill.instructions.bank import count_variables, validate_template

    rows: list[dict] = []
    seen: set[str] = set()
    counts: Counter[str] = Counter()
    for name, row_no, licence, query in read_queries(origin):
        made = nq_template(query) if name.startswith("nq_") else written_template(query)
        if made is None:
            counts[f"{name}: no rule made it generic"] += 1
            continue
        template, document = made
        reason = validate_template(template, query)
        if reason is not None:
            counts[f"{name}: invalid ({reason})"] += 1
            continue
        key = " ".join(template.lower().split())
        if key in seen:
            counts[f"{name}: duplicate template"] += 1
            continue
        seen.add(key)
        counts[f"{name}: kept"] += 1
        rows.append(
            {
                "template_id": len(rows),
                "template": template,
                "compatible_document_description": document,
                "n_fi": count_variables(template),
                "source": f"{name}#{row_no}",
                "query": query,
                "licence": licence,
            }
        )
    return rows, counts


def build_with_generator(origin: Path, config_path: Path) -> tuple[list[dict], Counter[str]]:
    """Run a real templatizer model (any gristmill Generator) over the queries."""
    sys.path.insert(0, str(REPO_ROOT))
    import pyarrow as pa
    import yaml

    from gristmill.instructions.bank import count_variables
    from gristmill.instructions.templatize import Templatize

    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    stage = Templatize(config)
    stage.setup()
    queries = list(read_queries(origin))
    batch = pa.table({stage.params.query_column: [q for _, _, _, q in queries]})
    out = stage.process(batch)
    rows: list[dict] = []
    seen: set[str] = set()
    counts: Counter[str] = Counter(
        {key: int(n) for key, n in stage.stats.counters.items() if key.startswith("failed")}
    )
    templates = out.column("fi_template").to_pylist()
    documents = out.column("fi_document_description").to_pylist()
    for (name, row_no, licence, query), template, document in zip(
        queries, templates, documents, strict=True
    ):
        if template is None:
            continue
        key = " ".join(template.lower().split())
        if key in seen:
            counts["duplicate template"] += 1
            continue
        seen.add(key)
        rows.append(
            {
                "template_id": len(rows),
                "template": template,
                "compatible_document_description": document,
                "n_fi": count_variables(template),
                "source": f"{name}#{row_no}",
                "query": query,
                "licence": licence,
            }
        )
    return rows, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("origin", type=Path, help="directory holding queries/ (shared/data)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--generator",
        type=Path,
        default=None,
        help="YAML parameters of the templatize stage (model, backend...)",
    )
    args = parser.parse_args(argv)
    if not (args.origin / "queries").is_dir():
        print(f"error: {args.origin} has no queries/ directory", file=sys.stderr)
        return 2
    if args.generator is None:
        rows, counts = build_rules(args.origin)
    else:
        rows, counts = build_with_generator(args.origin, args.generator)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    for reason, n in sorted(counts.items()):
        print(f"{n:6d}  {reason}")
    print(f"{len(rows)} templates written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
