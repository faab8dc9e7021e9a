"""docs/rollout.md's commands are the CLI's: every `lordi` line of its shell blocks
parses with the real parser (its values are the page's examples)."""

from __future__ import annotations

from tests.test_readme_commands import build_parser
from tests.walkthrough.debian import documented


def test_every_lordi_command_of_the_rollout_page_parses() -> None:
    commands = documented("rollout.md", "lordi")
    named = {" ".join(argv[1:3]) for argv in commands}
    assert {"enrol secret", "enrol school-config", "enrol list", "store status"} <= named
    parser = build_parser("lordi")
    for argv in commands:
        args = parser.parse_args(argv[1:])  # exits (fails the test) on an unknown option
        assert callable(args.func), argv
