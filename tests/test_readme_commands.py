"""The README's "## Commands" table against the real command-line parsers.

Each command of the table's first column is walked through the argparse parser of
its installed entry point (the console scripts of pyproject.toml, built in-process
by their own `main`, stopped just before parsing): every subcommand must exist, and
every `--option` must be an option of the (sub)command it follows. The other way
round, every subcommand of `lordi`, `lordi-collector` and `lordi-agent` must be in
the table, and so must every sibling of a subcommand the table names (all of
`lordi alerts`'s actions once one is listed, for example).

Table conventions, which this test relies on: a command starts with its entry point
(or `python -m module`); `a\\|b` lists alternatives; `[...]` and `(...)` are
optional or grouped; upper-case words are placeholders; `...` stands for the rest;
a cell's later commands may be bare subcommand names (`/ \\`comment\\``): they replace
the last subcommand of the command before them.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
ENTRY_POINTS = ("lordi-agent", "lordi-collector", "lordi", "lordi-web")
COVERED = ("lordi", "lordi-collector", "lordi-agent")  # every subcommand in the table


class _Built(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__(parser.prog)
        self.parser = parser


@functools.cache
def build_parser(script: str) -> argparse.ArgumentParser:
    """The parser the console script `script` builds, taken at its parse_args call."""
    (ep,) = entry_points(group="console_scripts", name=script)
    main: Callable[[list[str]], Any] = ep.load()

    def stop(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        raise _Built(self)

    with mock.patch.object(argparse.ArgumentParser, "parse_args", stop):
        try:
            main([])
        except _Built as built:
            return built.parser
    raise AssertionError(f"{script}: main() returned without parsing arguments")


@dataclass
class Level:
    """One parser, and whether its positional choice (if it has one) is used up."""

    parser: argparse.ArgumentParser
    choice_used: bool = False

    def options(self) -> dict[str, bool]:
        """--option -> takes a value."""
        return {
            s: action.nargs != 0
            for action in self.parser._actions
            for s in action.option_strings
        }

    def choices(self) -> dict[str, Level]:
        for action in self.parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                return {name: Level(p) for name, p in action.choices.items()}
        if self.choice_used:
            return {}
        for action in self.parser._actions:
            if not action.option_strings and action.choices:
                return {str(c): Level(self.parser, choice_used=True) for c in action.choices}
        return {}


@dataclass
class Walk:
    command: str
    problems: list[str] = field(default_factory=list)
    chosen: set[tuple[str, ...]] = field(default_factory=set)  # paths the command names
    parents: set[tuple[str, ...]] = field(default_factory=set)  # levels it chose at
    last_choice: int = -1  # index of the token holding the last subcommand


def tokens(command: str) -> list[str]:
    out = []
    for raw in command.replace("\\|", "|").split():
        token = raw.strip("[]()")
        if token and token != "|" and not token.endswith("..."):
            out.append(token)
    return out


def is_placeholder(token: str) -> bool:
    return token.upper() == token and any(c.isalpha() for c in token)


def walk(parsers: dict[str, argparse.ArgumentParser], words: list[str]) -> Walk:
    """Follow `words` (an entry point, then its arguments) through the parsers."""
    result = Walk(" ".join(words))
    script = words[0]
    # Alternatives multiply the paths: every one must be valid.
    paths: list[tuple[tuple[str, ...], Level]] = [((script,), Level(parsers[script]))]
    value_next = False
    for i, word in enumerate(words[1:], start=1):
        alternatives = word.split("|")
        if value_next:  # the value of the option before
            value_next = False
            continue
        if word.startswith("-"):
            for path, level in paths:
                for alt in alternatives:
                    if alt not in level.options():
                        result.problems.append(f"{' '.join(path)}: no option {alt}")
                    elif level.options()[alt]:
                        value_next = True
            continue
        here = [(path, level, level.choices()) for path, level in paths]
        if any(choices for _p, _l, choices in here) and not is_placeholder(word):
            new_paths = []
            for path, _level, choices in here:
                for alt in alternatives:
                    if alt in choices:
                        result.chosen.add((*path, alt))
                        result.parents.add(path)
                        new_paths.append(((*path, alt), choices[alt]))
                    else:
                        known = ", ".join(sorted(choices)) or "none"
                        result.problems.append(
                            f"{' '.join(path)}: no subcommand {alt!r} (known: {known})"
                        )
            paths = new_paths or paths
            result.last_choice = i
        # else: a placeholder or a positional value
    return result


def python_module(words: list[str]) -> list[str]:
    """`python -m module [--flag]`: the module exists and its source names each flag."""
    module = words[2]
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return [f"python -m {module}: no such module"]
    source = Path(spec.origin).read_text(encoding="utf-8")
    flags = [alt for word in words[3:] if word.startswith("--") for alt in word.split("|")]
    return [f"python -m {module}: {flag} not in its source" for flag in flags if flag not in source]


def commands_table() -> list[str]:
    """First-column cells of the README's "## Commands" table."""
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^## Commands\n(.*?)(?=^## )", text, flags=re.S | re.M)
    assert match, "README.md has no '## Commands' section"
    cells = []
    for line in match.group(1).splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        first = re.split(r"(?<!\\)\|", line)[1]
        if "`" in first:
            cells.append(first)
    assert cells, "the Commands section has no table"
    return cells


def readme_commands() -> Iterator[list[str]]:
    """Each command of the table as words, bare subcommands expanded."""
    parsers = {name: build_parser(name) for name in ENTRY_POINTS}
    for cell in commands_table():
        previous: list[str] = []
        last_choice = -1
        for span in re.findall(r"`([^`]+)`", cell):
            words = tokens(span)
            if words[0] in ENTRY_POINTS or words[:2] == ["python", "-m"]:
                full = words
            else:
                assert previous, f"{span!r}: a bare subcommand needs a command before it"
                full = previous[:last_choice] + words
            if full[0] in ENTRY_POINTS:
                last_choice = walk(parsers, full).last_choice
            previous = full
            yield full


@pytest.fixture(scope="module")
def parsers() -> dict[str, argparse.ArgumentParser]:
    return {name: build_parser(name) for name in ENTRY_POINTS}


def test_entry_points_are_the_projects_console_scripts() -> None:
    scripts = {ep.name for ep in entry_points(group="console_scripts")}
    assert set(ENTRY_POINTS) <= scripts
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    declared = set(re.findall(r'^(lordi[\w-]*) = "', pyproject, flags=re.M))
    assert declared == set(ENTRY_POINTS)  # a new entry point must be added here


def test_every_command_in_the_readme_exists(parsers: dict[str, argparse.ArgumentParser]) -> None:
    problems = []
    for words in readme_commands():
        if words[0] in ENTRY_POINTS:
            problems += walk(parsers, words).problems
        elif words[:2] == ["python", "-m"]:
            problems += python_module(words)
        else:
            problems.append(f"{' '.join(words)}: not a command of this project")
    assert problems == [], "README.md's Commands table:\n" + "\n".join(problems)


def test_every_subcommand_is_in_the_readme(parsers: dict[str, argparse.ArgumentParser]) -> None:
    chosen: set[tuple[str, ...]] = set()
    parents: set[tuple[str, ...]] = {(script,) for script in COVERED}
    for words in readme_commands():
        if words[0] in ENTRY_POINTS:
            result = walk(parsers, words)
            chosen |= result.chosen
            parents |= result.parents
    missing = []
    for parent in sorted(parents):
        level = Level(parsers[parent[0]])
        for name in parent[1:]:
            level = level.choices()[name]
        for name in sorted(level.choices()):
            if (*parent, name) not in chosen:
                missing.append(" ".join((*parent, name)))
    assert missing == [], "README.md's Commands table lacks:\n" + "\n".join(missing)


def test_the_walk_catches_what_it_must() -> None:
    """The checker itself: a wrong subcommand, a wrong option and a missing sibling."""
    parsers = {name: build_parser(name) for name in ENTRY_POINTS}
    assert walk(parsers, tokens("lordi alerts --store URL ack ID --by NAME")).problems == []
    assert walk(parsers, tokens("lordi alerts --store URL acknowledge ID")).problems
    assert walk(parsers, tokens("lordi-collector schema --write\\|--verify")).problems
    assert walk(parsers, tokens("lordi-agent --config agent.toml nosuch")).problems
    assert walk(parsers, tokens("lordi retention influxdb1\\|influxdb3 --url URL")).problems
    result = walk(parsers, tokens("lordi bench agent\\|ingest --json"))
    assert result.problems == [] and ("lordi", "bench") in result.parents
    assert ("lordi", "bench", "web") not in result.chosen
