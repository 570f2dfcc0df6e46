"""Finding interpreters for a plugin's runner version, and saying which places were searched when none fits."""

from __future__ import annotations

import sys

import pytest

from plugdock.daemon.environments import EnvironmentBuildError, find_interpreter


def test_finds_the_running_python_by_version() -> None:
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    found = find_interpreter(version)
    assert "python" in found
    assert find_interpreter(version) == found  # remembered


def test_a_missing_version_names_every_place_searched() -> None:
    with pytest.raises(EnvironmentBuildError) as caught:
        find_interpreter("2.5")
    message = str(caught.value)
    assert "no Python 2.5 interpreter found" in message
    for place in ("python2.5 on PATH", "pyenv (", "uv python find", "meta.runner.version 2.5", "pyenv install 2.5"):
        assert place in message
