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


def imported_names(path: Path, source: str | None = None) -> set[tuple[str, ...]]:
    """The dotted names of the proxy that `path` imports, typing-only imports included."""
    module = path.relative_to(PACKAGE.parent).with_suffix("").parts
    package = module[:-1]  # the dotted package the file sits in
    found: set[tuple[str, ...]] = set()
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
        found.update(name for name in names if len(name) >= 2 and name[0] == "s3router_proxy")
    return found


def proxy_imports(path: Path, source: str | None = None) -> set[str]:
    """The proxy's top-level packages (or modules, like `cli`) that `path` imports."""
    return {name[1] for name in imported_names(path, source)}


def module_of(name: tuple[str, ...]) -> Path | None:
    """The file an imported dotted name lives in: its module, or its package's __init__.py."""
    for end in range(len(name), 1, -1):
        base = PACKAGE.parent.joinpath(*name[:end])
        if base.with_suffix(".py").is_file():
            return base.with_suffix(".py")
        if (base / "__init__.py").is_file():
            return base / "__init__.py"
    return None


def circles(graph: dict[Path, set[Path]]) -> list[list[Path]]:
    """The groups of modules that import each other in a loop (Tarjan's strongly connected
    components of more than one module, or one that imports itself)."""
    index: dict[Path, int] = {}
    low: dict[Path, int] = {}
    stack: list[Path] = []
    found: list[list[Path]] = []

    def visit(node: Path) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
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


def test_no_modules_import_each_other_in_a_loop() -> None:
    # Typing-only imports count too: a lower module that must name an upper one's type says
    # what it needs as a Protocol of its own (e.g. http/messages.Connection).
    graph = {
        path: {target for name in imported_names(path) if (target := module_of(name))} - {path}
        for path in PACKAGE.rglob("*.py")
    }
    loops = [" -> ".join(str(p.relative_to(PACKAGE)) for p in group) for group in circles(graph)]
    assert not loops, "modules that import each other:\n" + "\n".join(loops)


def test_the_loop_check_finds_a_loop() -> None:
    a, b, c = (PACKAGE / name for name in ("a.py", "b.py", "c.py"))
    assert circles({a: {b}, b: {c}, c: {a}}) == [sorted([a, b, c])]
    assert circles({a: {b}, b: {c}, c: set()}) == []


def test_the_check_sees_imports_that_run_back_up() -> None:
    # The check itself can fail: relative and absolute imports of a package below are seen.
    where = PACKAGE / "http" / "server.py"
    source = "from ..serving import handler\nfrom . import messages\nimport s3router_proxy.multi\n"
    assert proxy_imports(where, source) == {"serving", "http", "multi"}
    assert proxy_imports(where, "from .. import cli\n") == {"cli"}
