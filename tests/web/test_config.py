"""web.toml errors name the field and the value, but never a secret's value."""

from __future__ import annotations

from pathlib import Path

import pytest

from lordi.web.config import WebConfigError, load_web_settings


def test_a_bad_value_is_named_with_its_field(tmp_path: Path) -> None:
    path = tmp_path / "web.toml"
    path.write_text('[web]\nport = "x"\n', encoding="utf-8")
    with pytest.raises(WebConfigError, match=r"web\.port: .*\(got 'x'\)"):
        load_web_settings(path)


def test_a_secrets_value_is_never_printed(tmp_path: Path) -> None:
    path = tmp_path / "web.toml"
    path.write_text("[web.series]\ntoken = 123456789\n", encoding="utf-8")
    with pytest.raises(WebConfigError) as caught:
        load_web_settings(path)
    assert "web.series.token" in str(caught.value) and "(got <hidden>)" in str(caught.value)
    assert "123456789" not in str(caught.value)
