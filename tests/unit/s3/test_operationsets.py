"""Operation facts: each set is made of real operation names, agrees with the groups, and is
defined in `operationsets.py` only, so two layers cannot disagree about, say, which
operations are listings."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from s3router_proxy.s3 import operationsets as sets
from s3router_proxy.s3.operations import OPERATIONS, UNKNOWN, operation_group

PACKAGE = Path(sets.__file__).parents[1]
SETS = {
    name: frozenset(value)
    for name, value in vars(sets).items()
    if name.isupper() and isinstance(value, frozenset | dict) and value is not OPERATIONS
}


def test_every_set_is_known_operation_names() -> None:
    assert len(SETS) >= 12
    for name, operations in SETS.items():
        assert operations, name
        assert operations <= OPERATIONS, name
        assert UNKNOWN not in operations, name


@pytest.mark.parametrize(
    ("name", "groups"),
    [
        ("OBJECT_LISTINGS", {"list"}),
        ("KEY_LISTINGS", {"list"}),
        ("SIZED_OPERATIONS", {"write"}),
        ("NEEDS_LENGTH", {"write"}),
        ("FALLBACK_OPERATIONS", {"read"}),
        ("MIRRORED_OPERATIONS", {"write", "delete"}),
        ("UPLOAD_STEPS", {"write", "delete"}),
    ],
)
def test_sets_agree_with_groups(name: str, groups: set[str]) -> None:
    assert {operation_group(op) for op in SETS[name]} <= groups


def test_sets_that_refine_others() -> None:
    assert sets.OBJECT_LISTINGS < sets.KEY_LISTINGS
    assert sets.NEEDS_LENGTH < sets.SIZED_OPERATIONS
    assert sets.UPLOAD_STEPS < sets.MIRRORED_OPERATIONS
    assert sets.KEYS_IN_BODY <= sets.SPLIT_BUCKET_OPERATIONS


def _operation_name_collections(tree: ast.Module) -> list[str]:
    """Module-level names bound to a literal set/tuple/list (or frozenset of one) of operation
    names."""
    found = []
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if isinstance(value, ast.Call) and value.args:
            value = value.args[0]
        if not isinstance(value, ast.Set | ast.Tuple | ast.List) or not value.elts:
            continue
        names = [e.value for e in value.elts if isinstance(e, ast.Constant)]
        if len(names) == len(value.elts) and all(n in OPERATIONS for n in names):
            found += [ast.unparse(t) for t in targets]
    return found


def test_operation_sets_are_defined_in_one_place() -> None:
    elsewhere = {
        str(path.relative_to(PACKAGE)): hits
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name not in ("operations.py", "operationsets.py")
        and (hits := _operation_name_collections(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert elsewhere == {}
    assert "OBJECT_LISTINGS" in _operation_name_collections(
        ast.parse((PACKAGE / "s3" / "operationsets.py").read_text(encoding="utf-8"))
    )
