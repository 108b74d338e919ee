"""Static check of a policy's `function.py`: the class contract found by parsing, never by importing."""

from __future__ import annotations

import ast

from .errors import PackageError

CLASS_NAME = "AIOSv1PolicyRule"
_FIELD = "code/function.py"


def _methods(node: ast.ClassDef) -> set[str]:
    names: set[str] = set()
    for item in node.body:
        if isinstance(item, ast.FunctionDef):
            names.add(item.name)
        elif isinstance(item, ast.Assign):
            names.update(t.id for t in item.targets if isinstance(t, ast.Name))
    return names


def check_policy_source(source: str) -> None:
    """Raise PackageError unless `source` defines class AIOSv1PolicyRule with an `eval` method.

    Base classes defined in the same file count (a policy may put `eval` in a mixin); a base imported from
    elsewhere can't be seen without running code, so `eval` must then be on the class itself.
    """
    try:
        tree = ast.parse(source, filename="function.py")
    except SyntaxError as exc:
        where = f"line {exc.lineno}" + (f", column {exc.offset}" if exc.offset else "")
        reason = f"syntax error at {where}: {exc.msg}"
        raise PackageError(f"code/function.py has a {reason}", errors={_FIELD: [reason]}) from None
    except ValueError as exc:  # e.g. NUL bytes in the source
        raise PackageError(f"code/function.py can't be parsed: {exc}", errors={_FIELD: [str(exc)]}) from None

    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    rule = classes.get(CLASS_NAME)
    if rule is None:
        reason = f"no top-level class '{CLASS_NAME}'"
        raise PackageError(f"code/function.py defines {reason}", errors={_FIELD: [reason]})

    seen: set[str] = set()
    pending = [rule]
    while pending:
        node = pending.pop()
        if node.name in seen:
            continue
        seen.add(node.name)
        if "eval" in _methods(node):
            return
        pending.extend(classes[b.id] for b in node.bases if isinstance(b, ast.Name) and b.id in classes)
    reason = f"class '{CLASS_NAME}' has no 'eval' method"
    raise PackageError(f"code/function.py: {reason}", errors={_FIELD: [reason]})
