"""No import cycles among the project's modules, function-level imports included (read with ``ast``)."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {"migrations", "sdk", ".venv", "node_modules", "__pycache__"}


def project_modules() -> dict[str, Path]:
    """Every module of the packages at the repository root (but the SDK), by dotted name."""
    modules = {}
    for package in sorted(p for p in ROOT.iterdir() if (p / "__init__.py").is_file() and p.name not in SKIP_DIRS):
        for path in package.rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if SKIP_DIRS & set(parts):
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports anywhere in its source (module level or inside functions)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, *([base] if base else [])])
            # `from a import b` imports the module a.b when there is one, else a name of a.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        found.update(target for target in targets if target in modules and target != name)
    return found


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_walk_sees_the_project():
    modules = project_modules()
    assert {"records.models", "governance.lifecycle", "policies.registration"} <= set(modules)
    assert not any(".migrations." in name for name in modules)
    assert "policies.storage" in imports_of("policies.models", modules["policies.models"], modules)


def test_find_cycles_reports_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_among_project_modules():
    modules = project_modules()
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    cycles = find_cycles(graph)
    described = [" ↔ ".join(cycle) + ": " + "; ".join(
        f"{a} → {', '.join(sorted(graph[a] & set(cycle)))}" for a in cycle) for cycle in cycles]
    assert not cycles, "import cycles:\n" + "\n".join(described)


#: What each resource app may import of the others: records point one way (graphs → functions → executors
#: → policies; jobs → executors → policies), and the framework apps import none of them.
RESOURCE_APPS = {"policies", "executors", "jobs", "functions", "graphs"}
ALLOWED = {
    "policies": set(),
    "executors": {"policies"},
    "jobs": {"executors", "policies"},
    "functions": {"executors", "policies"},
    "graphs": {"functions", "executors", "policies"},
    **{app: set() for app in ("records", "audit", "accounts", "governance")},
}


def model_reaches(path: Path) -> set[str]:
    """The apps whose models ``path`` looks up by label: ``apps.get_model("jobs", "Job")`` or ``("jobs.Job")``."""
    labels = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get_model"
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            labels.add(node.args[0].value.split(".")[0])
    return labels


def test_apps_depend_on_each_other_in_one_direction():
    modules = project_modules()
    wrong = []
    for name, path in modules.items():
        app = name.split(".")[0]
        if app not in ALLOWED:
            continue
        for target in imports_of(name, path, modules) | model_reaches(path):
            other = target.split(".")[0]
            if other != app and other in RESOURCE_APPS and other not in ALLOWED[app]:
                wrong.append(f"{name} → {target}")
    assert not wrong, "imports against the apps' dependency direction:\n" + "\n".join(sorted(wrong))
