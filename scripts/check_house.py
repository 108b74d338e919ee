"""House rules the integrator checks before a merge; prints every breach, one a line, and exits 1 if any.

    .venv/bin/python scripts/check_house.py [--only cycles|size|directions|internals]

* ``cycles``: no import cycle among the project's modules. Every import counts, those inside functions too
  (a deferred import hides a cycle from Python, not from the design). Migrations are left out.
* ``size``: no module over 400 lines, except migrations and ``records/query.py`` (the query compiler).
* ``directions``: the apps import each other (or look up each other's models by label) one way only:
  ``graphs → functions → executors → policies``, ``jobs → executors → policies``; the framework apps
  (records, audit, accounts, governance) import no resource app.
* ``internals``: nothing imported from ``django.db.backends.*`` (backend internals: go through
  ``django.db.connection``) except ``django.db.backends.signals``, where Django documents
  ``connection_created`` (the hook that sets up each new connection), and no private name (a module or name starting with ``_``) imported from django,
  rest_framework, gunicorn, kombu or celery.

Standard library only; it reads the sources, it imports none of them. ``breaches()`` returns the findings as
``Breach`` tuples for tests: ``rule`` and ``subject`` (a stable key, e.g. the modules of a cycle or a path)
and ``detail`` (what to read).
"""
from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
SKIPPED_FOLDERS = {".venv", ".git", "node_modules", "migrations", "__pycache__", "state", "static", "templates",
                   "media", "staticfiles", "build", "dist", "sdk"}
MAX_LINES = 400
SIZE_EXEMPT = {"records/query.py"}
# Documented in Django's signal reference (connection_created), unlike the rest of django.db.backends.
PUBLIC_BACKEND_MODULES = {"django.db.backends.signals"}
PRIVATE_CHECKED = ("django", "rest_framework", "gunicorn", "kombu", "celery")


class Breach(NamedTuple):
    rule: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.detail}"


class Import(NamedTuple):
    target: str  # the module (or module.name) imported, absolute
    names: tuple[str, ...]  # the names of a from-import, else ()
    path: Path
    line: int


def project_files() -> dict[str, Path]:
    """Module name -> file, for every project module: the portal's apps, tests, bench and scripts, and the SDK
    (sdk/src); migrations, the virtualenv and other generated folders are left out."""
    modules: dict[str, Path] = {}
    for root, skipped in ((ROOT, SKIPPED_FOLDERS), (ROOT / "sdk" / "src", SKIPPED_FOLDERS - {"sdk"})):
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root).parts
            if any(part in skipped or part.startswith(".") for part in parts[:-1]):
                continue
            names = [*parts[:-1], *([] if parts[-1] == "__init__.py" else [parts[-1][:-3]])]
            if names:
                modules[".".join(names)] = path
    return modules


def imports_of(module: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, (), path, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".") if package else []
                anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                base = ".".join(filter(None, [*anchor, base]))
            yield Import(base, tuple(alias.name for alias in node.names), path, node.lineno)


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# --- cycles ---------------------------------------------------------------------------------------------------
def import_graph(modules: dict[str, Path]) -> dict[str, dict[str, Import]]:
    """module -> {imported project module: the first import statement that imports it}."""
    graph: dict[str, dict[str, Import]] = {name: {} for name in modules}
    for name, path in modules.items():
        for imp in imports_of(name, path):
            # ``from a.b import c`` imports the module a.b.c when there is one, else the name c of a.b.
            targets = [f"{imp.target}.{n}" if f"{imp.target}.{n}" in modules else imp.target for n in imp.names] \
                or [imp.target]
            for target in targets:
                if target in modules and target != name:
                    graph[name].setdefault(target, imp)
    return graph


def strongly_connected(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; the components of more than one module, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def one_cycle(graph: dict[str, dict[str, Import]], component: list[str]) -> list[str]:
    """A shortest cycle through the component's first module, as a list of modules ending where it starts."""
    members = set(component)
    start = component[0]
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node]):
                if child not in members:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if child not in came_from:
                    came_from[child] = node
                    following.append(child)
        frontier = following
    return [start, start]


def cycle_breaches(modules: dict[str, Path]) -> list[Breach]:
    graph = import_graph(modules)
    breaches = []
    for component in strongly_connected(graph):
        cycle = one_cycle(graph, component)
        steps = "; ".join(
            f"{a} imports {b} ({rel(graph[a][b].path)}:{graph[a][b].line})" for a, b in zip(cycle, cycle[1:], strict=False)
        )
        breaches.append(Breach("cycles", " ".join(component),
                               f"import cycle among {', '.join(component)}: {steps}"))
    return breaches


# --- size -----------------------------------------------------------------------------------------------------
def size_breaches(modules: dict[str, Path]) -> list[Breach]:
    breaches = []
    for path in sorted(set(modules.values())):
        if rel(path) in SIZE_EXEMPT:
            continue
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            breaches.append(Breach("size", rel(path), f"{rel(path)} has {lines} lines (at most {MAX_LINES})"))
    return breaches


# --- internals ------------------------------------------------------------------------------------------------
def internals_breaches(modules: dict[str, Path]) -> list[Breach]:
    breaches = []
    for name, path in sorted(modules.items()):
        for imp in imports_of(name, path):
            where = f"{rel(path)}:{imp.line}"
            top = imp.target.split(".")[0]
            backend = imp.target == "django.db.backends" or imp.target.startswith("django.db.backends.")
            if backend and imp.target not in PUBLIC_BACKEND_MODULES:
                breaches.append(Breach("internals", f"{rel(path)} {imp.target}",
                                       f"{where} imports from {imp.target} (backend internals)"))
            if top not in PRIVATE_CHECKED:
                continue
            private = [part for part in imp.target.split(".") if part.startswith("_")]
            private += [n for n in imp.names if n.startswith("_")]
            for part in private:
                breaches.append(Breach("internals", f"{rel(path)} {imp.target} {part}",
                                       f"{where} imports the private {part} of {imp.target}"))
    return breaches


# --- directions -----------------------------------------------------------------------------------------------
RESOURCE_APPS = {"policies", "executors", "jobs", "functions", "graphs"}
ALLOWED = {
    "policies": set(),
    "executors": {"policies"},
    "jobs": {"executors", "policies"},
    "functions": {"executors", "policies"},
    "graphs": {"functions", "executors", "policies"},
    **{app: set() for app in ("records", "audit", "accounts", "governance")},
}


def model_reaches(path: Path) -> Iterator[tuple[str, int]]:
    """Apps whose models ``path`` looks up by label: ``apps.get_model("jobs", "Job")`` or ``("jobs.Job")``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get_model"
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            yield node.args[0].value.split(".")[0], node.lineno


def direction_breaches(modules: dict[str, Path]) -> list[Breach]:
    breaches = []
    for name, path in sorted(modules.items()):
        app = name.split(".")[0]
        if app not in ALLOWED:
            continue
        reaches = [(imp.target.split(".")[0], imp.line) for imp in imports_of(name, path)]
        for other, line in [*reaches, *model_reaches(path)]:
            if other != app and other in RESOURCE_APPS and other not in ALLOWED[app]:
                breaches.append(Breach("directions", f"{rel(path)} {other}",
                                       f"{rel(path)}:{line}: {app} reaches {other}, against the apps' direction"))
    return breaches


RULES = {"cycles": cycle_breaches, "size": size_breaches, "directions": direction_breaches,
         "internals": internals_breaches}


def breaches(only: str | None = None) -> list[Breach]:
    modules = project_files()
    return [b for rule, check in RULES.items() if only in (None, rule) for b in check(modules)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(RULES))
    args = parser.parse_args(argv)
    found = breaches(args.only)
    for breach in found:
        print(breach)
    print(f"{len(found)} breach(es) of the house rules" if found else "house rules: all kept")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
