"""The house rules of scripts/check_house.py hold, and the check finds what it is meant to find."""
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_check_house():
    spec = importlib.util.spec_from_file_location("check_house", ROOT / "scripts" / "check_house.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_house"] = module
    spec.loader.exec_module(module)
    return module


check_house = load_check_house()

def test_the_project_keeps_every_house_rule():
    assert [str(breach) for breach in check_house.breaches()] == []


def test_the_checks_name_what_they_find(tmp_path, monkeypatch):
    """A small tree with one breach of each kind (a cycle through a function-level import, a long module, a
    backend import, a private django name), and the same kinds allowed where they are allowed."""
    files = {
        "alpha/__init__.py": "",
        "alpha/one.py": "from alpha import two\n",
        "alpha/two.py": "def later():\n    from . import three\n",
        "alpha/three.py": "import alpha.one\n",
        "alpha/migrations/0001_initial.py": "import alpha.one\n" + "x = 1\n" * 500,
        "beta/__init__.py": "from django.db.backends.postgresql.psycopg_any import IsolationLevel\n",
        "beta/long.py": "x = 1\n" * 401,
        "beta/fine.py": "x = 1\n" * 398 + "from django.db import connection\nfrom audit.services import _json_safe\n",
        "beta/private.py": "from rest_framework.fields import _UnvalidatedField\nfrom django.utils._os import safe_join\n",
        "records/query.py": "x = 1\n" * 900,
        "policies/__init__.py": "",
        "policies/models.py": "from django.apps import apps\nJob = apps.get_model('jobs', 'Job')\n",
        "graphs/__init__.py": "",
        "graphs/models.py": "import policies.models\n",
        "records/__init__.py": "import graphs.models\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(check_house, "ROOT", tmp_path)
    found = {(b.rule, b.subject): b.detail for b in check_house.breaches()}
    assert set(found) == {
        ("cycles", "alpha.one alpha.three alpha.two"),
        ("size", "beta/long.py"),
        ("internals", "beta/__init__.py django.db.backends.postgresql.psycopg_any"),
        ("internals", "beta/private.py rest_framework.fields _UnvalidatedField"),
        ("internals", "beta/private.py django.utils._os _os"),
        ("directions", "policies/models.py jobs"),
        ("directions", "records/__init__.py graphs"),
    }
    assert found[("cycles", "alpha.one alpha.three alpha.two")] == (
        "import cycle among alpha.one, alpha.three, alpha.two: alpha.one imports alpha.two (alpha/one.py:1); "
        "alpha.two imports alpha.three (alpha/two.py:2); alpha.three imports alpha.one (alpha/three.py:1)"
    )
    assert found[("size", "beta/long.py")] == "beta/long.py has 401 lines (at most 400)"
    assert check_house.main(["--only", "size"]) == 1
