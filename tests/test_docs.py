"""The README stays true to the tree: every guide linked, every module placed, the fresh-machine
commands the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
PACKAGE = REPO / "src" / "s3router_proxy"


def section(title: str) -> str:
    """The README's `## title` section, up to the next one."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def links(text: str = README) -> set[str]:
    return {target.split("#")[0] for target in re.findall(r"\]\(([^)\s]+)\)", text)}


def command_after(label: str) -> str:
    """The one-line `sh` block that follows `**label**` in the README."""
    match = re.search(rf"\*\*{re.escape(label)}\*\*[^`]*?```sh\n([^\n]*)\n```", README, re.S)
    assert match, f"README has no one-line command after **{label}**"
    return match.group(1)


def test_every_guide_and_the_security_page_are_listed() -> None:
    guides = {f"docs/{path.name}" for path in (REPO / "docs").glob("*.md")}
    assert len(guides) > 3, guides
    missing = sorted((guides | {"SECURITY.md"}) - links(section("Documentation")))
    assert not missing, f"README's Documentation section does not link {missing}"


def test_every_link_to_a_file_points_at_one() -> None:
    local = {link for link in links() if not re.match(r"[a-z]+:", link) and link}
    assert not sorted(link for link in local if not (REPO / link).exists())


def test_the_layout_names_every_module_and_package() -> None:
    layout = section("Layout")
    bullets = re.split(r"^- ", layout, flags=re.M)[1:]
    top = [p.name for p in sorted(PACKAGE.glob("*.py")) if p.name != "__init__.py"]
    packages = sorted(p.parent for p in PACKAGE.glob("*/__init__.py"))
    assert len(packages) > 5 and top, (packages, top)
    unnamed = [name for name in top if f"`{name}`" not in layout]
    for package in packages:
        line = [b for b in bullets if b.startswith(f"`{package.name}/`")]
        assert len(line) == 1, f"README's Layout has no one line for `{package.name}/`"
        modules = [p.name for p in sorted(package.glob("*.py")) if p.name != "__init__.py"]
        assert modules, package
        unnamed += [f"{package.name}/{m}" for m in modules if f"`{m}`" not in line[0]]
    assert not unnamed, f"README's Layout does not name {unnamed}"


def test_the_fresh_machine_commands_are_what_ci_runs() -> None:
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    test_it = command_after("Test it")
    assert test_it in ci, f"README's 'Test it' is not what .ci/run runs: {test_it}"
    assert "-c constraints.txt" in test_it
    # "Try it" installs the same way, with the demo's extra instead of the tests', and starts
    # the demo instead of the suite.
    try_it = command_after("Try it")
    install, _, start = test_it.rpartition(" && ")
    assert try_it == (
        install.replace("'.[test]'", "'.[demo]'")
        + " && .venv/bin/lakefs-s3-router --config config/demo.yaml"
    ), try_it
    assert start == ".venv/bin/pytest"
    assert (REPO / "config" / "demo.yaml").is_file()
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r"^demo = \[", pyproject, re.M), "pyproject.toml has no demo extra"


def test_the_readme_reads_in_a_newcomers_order() -> None:
    order = ["**Try it**", "**Use it like S3**", "**Test it**", "**Benchmark it**", "## Layout"]
    positions = [README.index(marker) for marker in order]
    assert positions == sorted(positions), order
    # What the Python snippet needs is said next to it.
    snippet = README.index("```python")
    assert "pip install boto3" in README[README.index("**Use it like S3**") : snippet]


def test_the_access_log_format_is_stated_as_the_code_has_it() -> None:
    from s3router_proxy.config.model import Config

    assert Config.__dataclass_fields__["log_format"].default == "text"
    assert "text by default" in README and "log_format: json" in README
    assert "JSON access" not in README
