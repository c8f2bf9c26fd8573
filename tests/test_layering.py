"""Imports run one way, as docs/architecture.md's package table says: a package imports only
from the packages in the rows above it, and one whose row says "nothing of the proxy" imports
none. A newcomer reads the architecture from that table; this keeps it true."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "s3router_proxy"
ARCHITECTURE = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")


def table() -> list[tuple[str, str]]:
    """(package, its "imports from" cell) for each row, top to bottom."""
    rows = re.findall(r"^\| `([a-z0-9_]+)/` \|[^|]*\| ([^|]*) \|$", ARCHITECTURE, re.M)
    assert len(rows) >= 8, "docs/architecture.md has no package table"
    return rows


def proxy_imports(path: Path, source: str | None = None) -> set[str]:
    """The proxy's top-level packages (or modules, like `cli`) that `path` imports."""
    module = path.relative_to(PACKAGE.parent).with_suffix("").parts
    package = module[:-1]  # the dotted package the file sits in
    found: set[str] = set()
    text = path.read_text(encoding="utf-8") if source is None else source
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = (*base, *(node.module.split(".") if node.module else ()))
                names = [target] if node.module else [(*base, a.name) for a in node.names]
            else:
                names = [tuple((node.module or "").split("."))]
        elif isinstance(node, ast.Import):
            names = [tuple(alias.name.split(".")) for alias in node.names]
        else:
            continue
        for name in names:
            if len(name) >= 2 and name[0] == "s3router_proxy":
                found.add(name[1])
    return found


def test_the_table_names_every_package() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert {name for name, _ in table()} == packages


def test_imports_run_one_way() -> None:
    rows = table()
    order = [name for name, _ in rows]
    wrong = []
    for index, (name, cell) in enumerate(rows):
        allowed = set() if "nothing of the proxy" in cell else set(order[:index])
        allowed.add(name)
        for path in sorted((PACKAGE / name).rglob("*.py")):
            for imported in sorted(proxy_imports(path) - allowed):
                wrong.append(f"{path.relative_to(PACKAGE)} imports {imported}/")
    assert not wrong, "imports that run back up the table:\n" + "\n".join(wrong)


def test_only_the_command_line_imports_the_commands() -> None:
    importers = [
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if "commands" in proxy_imports(path) and path.parent.name != "commands"
    ]
    assert importers == ["cli.py"]


def test_the_check_sees_imports_that_run_back_up() -> None:
    # The check itself can fail: relative and absolute imports of a package below are seen.
    where = PACKAGE / "http" / "server.py"
    source = "from ..serving import handler\nfrom . import messages\nimport s3router_proxy.multi\n"
    assert proxy_imports(where, source) == {"serving", "http", "multi"}
    assert proxy_imports(where, "from .. import cli\n") == {"cli"}
