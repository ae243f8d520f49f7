"""The README's command-line examples, run as written from the project directory (on a
temporary instance and lake), so they cannot rot."""

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    """The `.venv/bin/dg` / `.venv/bin/dagster` lines of README's fenced blocks, comments dropped."""
    blocks = re.findall(r"```\n(.*?)```", (PROJECT / "README.md").read_text(), flags=re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith((".venv/bin/dg ", ".venv/bin/dagster "))]


def test_the_readme_shows_the_commands_users_type():
    commands = readme_commands()
    assert any(c.startswith(".venv/bin/dg list defs") for c in commands), commands
    assert any(c.startswith(".venv/bin/dagster asset list") for c in commands), commands


@pytest.mark.parametrize("command", readme_commands())
def test_a_readme_command_runs_from_the_project_directory(command, tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "NETFLIX_LAKE_URI": str(tmp_path / "lake")}
    done = subprocess.run(shlex.split(command), cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 0, f"{command}\n{out}"
    assert "Traceback" not in out, f"{command}\n{out}"
