"""portal.prepared: lookups and writes whose SQL is compiled once must answer exactly as the ORM does."""
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from executors.models import PolicyExecutor
from portal.models import ApiToken
from portal.models.audit import AuditChainHead
from portal.prepared import PreparedLookup, PreparedWrite

pytestmark = pytest.mark.django_db


def make_executor(executor_id: str, **fields) -> PolicyExecutor:
    return PolicyExecutor.objects.create(executor_id=executor_id, executor_host_uri="http://127.0.0.1:9", **fields)


def test_a_lookup_returns_the_same_instance_as_the_orm():
    make_executor("alpha", executor_metadata={"zone": "a", "n": [1, 2]})
    make_executor("beta")
    lookup = PreparedLookup(lambda value: PolicyExecutor.objects.filter(executor_id=value))
    for key in ("alpha", "beta"):  # the second call reuses the SQL compiled by the first
        found, expected = lookup.first(key), PolicyExecutor.objects.get(executor_id=key)
        assert found.pk == expected.pk
        for field in PolicyExecutor._meta.concrete_fields:  # converters applied: JSON, datetimes
            assert getattr(found, field.attname) == getattr(expected, field.attname), field.name
        assert found._state.adding is False and found._state.db == "default"
    assert lookup.first("gamma") is None


def test_the_looked_up_value_is_a_parameter_not_sql():
    make_executor("alpha")
    lookup = PreparedLookup(lambda value: PolicyExecutor.objects.filter(executor_id=value))
    assert lookup.first("alpha' OR '1'='1") is None
    assert lookup.first("alpha").executor_id == "alpha"


def test_a_lookup_compiles_once_and_runs_one_statement():
    make_executor("alpha")
    built = []
    lookup = PreparedLookup(lambda value: built.append(value) or PolicyExecutor.objects.filter(executor_id=value))
    lookup.first("alpha")
    with CaptureQueriesContext(connection) as queries:
        lookup.first("alpha")
        lookup.first("nope")
    assert len(built) == 1 and len(queries) == 2


def test_deferred_fields_load_on_access():
    make_executor("alpha", executor_metadata={"zone": "a"})
    lookup = PreparedLookup(lambda value: PolicyExecutor.objects.filter(executor_id=value).only("id", "executor_id"))
    found = lookup.first("alpha")
    assert found.get_deferred_fields() >= {"executor_metadata"}
    assert found.executor_metadata == {"zone": "a"}


def test_integer_lookups_and_wrong_value_types():
    head_lookup = PreparedLookup(lambda pk: AuditChainHead.objects.filter(pk=pk), value_type=int)
    AuditChainHead.objects.update_or_create(pk=1, defaults={"last_seq": 7, "last_hash": "ab"})
    assert head_lookup.first(1).last_seq == 7
    assert head_lookup.first(2) is None
    with pytest.raises(TypeError, match="takes a int, not str"):
        head_lookup.first("1")


def test_querysets_it_cannot_prepare_are_refused_at_first_use():
    joined = PreparedLookup(lambda value: ApiToken.objects.select_related("user").filter(key_hash=value))
    with pytest.raises(ValueError, match="plain queryset"):
        joined.first("x")
    constant = PreparedLookup(lambda value: ApiToken.objects.filter(name="fixed"))
    with pytest.raises(ValueError, match="does not reach the SQL"):
        constant.first("x")


def test_select_for_update_lookup_runs_inside_a_transaction():
    AuditChainHead.objects.update_or_create(pk=1, defaults={"last_seq": 3, "last_hash": "cd"})
    locked = PreparedLookup(lambda pk: AuditChainHead.objects.select_for_update().filter(pk=pk), value_type=int)
    with transaction.atomic():
        assert locked.first(1).last_hash == "cd"


def test_writes_insert_and_update_one_row_with_prepared_values():
    from django.utils import timezone

    from portal.models.audit import AuditEntry

    columns = ("seq", "timestamp", "actor_id", "actor_username", "action", "target_type", "target_key", "request_id",
               "data", "prev_hash", "entry_hash")
    insert = PreparedWrite(AuditEntry, columns)
    now = timezone.now()
    values = {"seq": 41, "timestamp": now, "actor_id": None, "actor_username": "", "action": "x.y",
              "target_type": "t", "target_key": "k'; DROP TABLE x; --", "request_id": "r",
              "data": {"a": [1, "b"], "ü": None}, "prev_hash": "0" * 64, "entry_hash": "1" * 64}
    pk = insert.run(values)
    row = AuditEntry.objects.get(pk=pk)
    assert {name: getattr(row, name) for name in columns} == values

    AuditChainHead.objects.update_or_create(pk=1, defaults={"last_seq": 0, "last_hash": ""})
    update = PreparedWrite(AuditChainHead, ("last_seq", "last_hash"), update=True)
    assert update.run({"last_seq": 41, "last_hash": "1" * 64}, pk=1) == 1
    assert update.run({"last_seq": 1, "last_hash": ""}, pk=2) == 0
    assert AuditChainHead.objects.values_list("last_seq", "last_hash").get(pk=1) == (41, "1" * 64)


def test_by_key_with_fields_loads_only_those_and_compiles_each_shape_once():
    make_executor("alpha", health_data={"status": "ok", "protections": {"memory": "limited"}})
    whole = PolicyExecutor.by_key("alpha")
    bare = PolicyExecutor.by_key("alpha", ("id", "executor_id", "executor_host_uri", "executor_status"))
    assert not whole.get_deferred_fields()
    assert bare.get_deferred_fields() >= {"health_data", "executor_metadata"}
    assert (bare.pk, bare.executor_host_uri, bare.executor_status) == (whole.pk, whole.executor_host_uri,
                                                                        whole.executor_status)
    assert set(PolicyExecutor._key_lookups) >= {None, ("id", "executor_id", "executor_host_uri", "executor_status")}
    assert bare.health_data["protections"] == {"memory": "limited"}  # a deferred field still loads on access
    assert PolicyExecutor.by_key("nope", ("id", "executor_id")) is None
