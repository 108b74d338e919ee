"""What ./run.sh's first and later starts leave a newcomer with: the demo logins and token (kept across
restarts), and manage.py's answer when it is aimed at a database ./run.sh never made (issue 14 items 2 and 3)."""
import io
import subprocess
import sys

import pytest
from django.core.management import call_command

from accounts.models import ApiToken
from tests.portal.embedded import ROOT, clean_env


@pytest.mark.django_db
def test_a_second_start_keeps_the_logins_and_the_demo_token(tmp_path):
    credentials = tmp_path / "credentials.txt"
    call_command("demo_data", credentials_file=str(credentials), stdout=io.StringIO())
    first = credentials.read_text()
    assert "(set on first start" not in first
    call_command("demo_data", credentials_file=str(credentials), stdout=io.StringIO())
    assert credentials.read_text() == first
    assert ApiToken.objects.active().filter(user__username="admin", name="demo").count() == 1


@pytest.mark.django_db
def test_a_start_without_the_earlier_token_replaces_it_and_says_how_to_reset_passwords(tmp_path):
    credentials = tmp_path / "credentials.txt"
    call_command("demo_data", credentials_file=str(credentials), stdout=io.StringIO())
    first_key = credentials.read_text().split("admin API token:")[1].split()[0]
    credentials.unlink()
    call_command("demo_data", credentials_file=str(credentials), stdout=io.StringIO())
    again = credentials.read_text()
    assert "`manage.py changepassword admin` sets a new one" in again
    assert first_key not in again
    assert ApiToken.objects.active().filter(user__username="admin", name="demo").count() == 1


def manage(state, *args):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=clean_env(POLICYGRID_STATE_DIR=str(state)))


def test_a_command_aimed_at_no_database_answers_one_line_and_leaves_no_folder(tmp_path):
    state = tmp_path / "never-started"
    done = manage(state, "create_api_token", "admin")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"no PolicyGrid database at {state}" in done.stderr and "POLICYGRID_STATE_DIR" in done.stderr
    assert "./run.sh" in done.stderr
    assert not state.exists()


def test_a_command_aimed_at_an_empty_database_answers_one_line(tmp_path):
    (tmp_path / "policygrid.sqlite3").touch()
    done = manage(tmp_path, "create_api_token", "admin")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "has no PolicyGrid tables" in done.stderr


def test_migrate_still_makes_the_database_and_its_folder(tmp_path):
    state = tmp_path / "fresh"
    done = manage(state, "migrate", "--verbosity", "0")
    assert done.returncode == 0, done.stderr
    assert (state / "policygrid.sqlite3").exists()


def test_the_portal_names_its_assets_with_the_port_it_serves_on():
    """Issue 14 item 1: on POLICYGRID_PORT=8765 the sample's package was stored as http://127.0.0.1:8000/…"""
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
                               "print(settings.PUBLIC_BASE_URL)"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env=clean_env(POLICYGRID_PORT="8765", DJANGO_SETTINGS_MODULE="portal.settings"))
    assert done.stdout.strip() == "http://127.0.0.1:8765", done.stderr
