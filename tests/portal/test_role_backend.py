"""RoleBackend: the permissions Django's ModelBackend gives, read in one query."""
import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AnonymousUser, Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.authentication import RoleBackend

pytestmark = pytest.mark.django_db


def fresh(user):
    """The same user without the permission caches a backend leaves on the object."""
    return User.objects.get(pk=user.pk)


@pytest.fixture
def cases(make_user):
    own = make_user("own-perms")
    own.user_permissions.add(Permission.objects.get(codename="review_policyrule"))
    both = make_user("both", "author", "operator")
    both.user_permissions.add(Permission.objects.get(codename="view_auditentry"),  # also in the roles: no duplicate
                              Permission.objects.get(codename="delete_job"))
    inactive = make_user("inactive", "operator")
    inactive.is_active = False
    inactive.save()
    return [make_user("viewer-only", "viewer"), make_user("no-role"), own, both, inactive,
            make_user("root", superuser=True), make_user("admin-role", "admin")]


def test_answers_as_model_backend_does(cases):
    for user in cases:
        expected = ModelBackend().get_all_permissions(fresh(user))
        assert RoleBackend().get_all_permissions(fresh(user)) == expected, user.username
    # the cases differ (but for no-role = inactive = nothing, root = admin role = everything), so the comparison
    # can tell a wrong answer
    assert len({frozenset(ModelBackend().get_all_permissions(fresh(u))) for u in cases}) == len(cases) - 2


def test_own_and_role_permissions_together(cases):
    both = fresh(next(u for u in cases if u.username == "both"))
    perms = RoleBackend().get_all_permissions(both)
    assert {"jobs.delete_job", "policies.add_policyrule", "policies.execute_policyrule"} <= perms
    assert "policies.review_policyrule" not in perms


def test_one_query_per_user_then_cached(cases):
    both = fresh(next(u for u in cases if u.username == "both"))
    with CaptureQueriesContext(connection) as queries:
        assert both.has_perm("policies.execute_policyrule")
        assert not both.has_perm("policies.review_policyrule")
        assert both.has_perm("jobs.delete_job")
    assert len(queries) == 1


def test_nobody_outside_gets_permissions(cases):
    inactive = fresh(next(u for u in cases if u.username == "inactive"))
    assert RoleBackend().get_all_permissions(inactive) == set()
    assert RoleBackend().get_all_permissions(AnonymousUser()) == set()
    viewer = fresh(cases[0])
    assert RoleBackend().get_all_permissions(viewer, obj=object()) == set()


def test_is_the_configured_backend(settings):
    assert settings.AUTHENTICATION_BACKENDS == ["accounts.authentication.RoleBackend"]


def test_kept_between_requests_and_forgotten_at_once_when_they_change(cases):
    from django.contrib.auth.models import Group

    both = next(u for u in cases if u.username == "both")
    assert fresh(both).has_perm("policies.execute_policyrule")  # read once, then kept in Django's cache
    user = fresh(both)  # a new request's user: no permission cache of its own
    with CaptureQueriesContext(connection) as queries:
        assert user.has_perm("policies.execute_policyrule") and user.has_perm("jobs.delete_job")
    assert len(queries) == 0
    both.groups.remove(Group.objects.get(name="operator"))  # a role taken away
    assert not fresh(both).has_perm("policies.execute_policyrule")
    Group.objects.get(name="author").permissions.remove(Permission.objects.get(codename="add_policyrule"))
    assert not fresh(both).has_perm("policies.add_policyrule")  # a role's permission taken away
    both.user_permissions.remove(Permission.objects.get(codename="delete_job"))  # an own permission
    assert not fresh(both).has_perm("jobs.delete_job")
    both.groups.add(Group.objects.get(name="operator"))  # and given back
    assert fresh(both).has_perm("policies.execute_policyrule")
