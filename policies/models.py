"""PolicyRule (a versioned policy) and Asset (a stored policy package), as docs/api.md §4.1–4.2 name them."""
import uuid

from django.core.exceptions import ValidationError
from django.db import models
from policygrid.fetch import fetch_bytes

from governance.models import GovernedModel
from policies.storage import fetch_options, read_asset_bytes, review_files
from records.models import RecordModel
from records.validators import (
    validate_name,
    validate_release_tag,
    validate_version,
    versioned_uri,
)

DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"


def empty_dict():
    return {}


def empty_list():
    return []


class PolicyRule(GovernedModel, RecordModel):
    """One version of a policy: ``{name}:{version}-{release_tag}``.

    ``status`` follows the governed lifecycle (see ``governance.choices.LifecycleStatus``); lifecycle
    transitions are service functions, never plain field writes.
    """

    lookup_field = "policy_rule_uri"
    identity_fields = ("policy_rule_uri", "name", "version", "release_tag")
    # Filled by registration (policies.registration pins the package's digest): an update that leaves it
    # empty has it pinned again, which is no change to a frozen field.
    pinned_fields = ("code_digest",)
    # The (code, code_digest) whose package was checked: stored versions were, at registration.
    checked_package: tuple[str, str] | None = None
    internal_fields = ("code_asset",)
    frozen_fields = (
        "code", "code_digest", "code_type", "type", "policy_input_schema", "policy_output_schema",
        "policy_settings_schema", "policy_parameters_schema", "policy_settings", "policy_parameters",
        "management_commands_schema", "policy_network",
    )

    policy_rule_uri = models.CharField(max_length=255, unique=True, editable=False)
    name = models.CharField(max_length=100, validators=[validate_name], db_index=True)
    version = models.CharField(max_length=50, validators=[validate_version])
    release_tag = models.CharField(max_length=100, validators=[validate_release_tag], db_index=True)
    metadata = models.JSONField(default=empty_dict, blank=True)
    tags = models.CharField(max_length=1000, blank=True, default="", help_text="comma-separated")
    code = models.CharField(max_length=2048, help_text="where the package lives: URL, s3:// or asset URL")
    code_type = models.CharField(max_length=50, blank=True, default="")
    code_digest = models.CharField(
        max_length=71, blank=True, default="", help_text="sha256:<hex> of the archive, pinned at registration"
    )
    type = models.CharField(max_length=50, default="python_class_v1")
    policy_input_schema = models.JSONField(default=empty_dict, blank=True)
    policy_output_schema = models.JSONField(default=empty_dict, blank=True)
    policy_settings_schema = models.JSONField(default=empty_dict, blank=True)
    policy_parameters_schema = models.JSONField(default=empty_dict, blank=True)
    policy_settings = models.JSONField(default=empty_dict, blank=True)
    policy_parameters = models.JSONField(default=empty_dict, blank=True)
    management_commands_schema = models.JSONField(default=empty_list, blank=True)
    # Outbound network the policy's code may use: {} (none, the default) or {"outbound_ports": [443, ...]}
    # (TCP connect to those ports only). A behaviour field: reviewed, signed and frozen with the code.
    policy_network = models.JSONField(default=empty_dict, blank=True)
    description = models.TextField(blank=True, default="")
    functionality_data = models.JSONField(default=empty_dict, blank=True)
    resource_estimates = models.JSONField(default=empty_dict, blank=True)
    # The uploaded asset ``code`` points at, kept by save(): an asset a policy uses can't be deleted.
    code_asset = models.ForeignKey("Asset", null=True, blank=True, editable=False, on_delete=models.PROTECT,
                                   related_name="policies")

    class Meta:
        ordering = ["name", "version", "release_tag"]
        verbose_name = "policy"
        verbose_name_plural = "policies"
        constraints = [
            models.UniqueConstraint(
                fields=["name", "version", "release_tag"], name="%(app_label)s_%(class)s_unique_identity"
            ),
        ]
        permissions = [
            ("review_policyrule", "Can approve, reject, deprecate and retire policies"),
            ("execute_policyrule", "Can execute approved policies"),
        ]

    def compute_derived_fields(self) -> None:
        self.policy_rule_uri = versioned_uri(self.name, self.version, self.release_tag)
        if isinstance(self.tags, list):
            self.tags = ",".join(str(tag) for tag in self.tags)

    def clean(self):
        errors: dict[str, list[str]] = {}
        for field in ("metadata", "policy_input_schema", "policy_output_schema", "policy_settings_schema",
                      "policy_parameters_schema", "policy_settings", "policy_parameters",
                      "functionality_data", "resource_estimates"):
            if not isinstance(getattr(self, field), dict):
                errors.setdefault(field, []).append(
                    f"must be a JSON object, not {type(getattr(self, field)).__name__}"
                )
        if not isinstance(self.management_commands_schema, list):
            errors.setdefault("management_commands_schema", []).append("must be a JSON array")
        network_problem = _network_problem(self.policy_network)
        if network_problem:
            errors.setdefault("policy_network", []).append(network_problem)
        if self.code_digest and not _matches(DIGEST_PATTERN, self.code_digest):
            errors.setdefault("code_digest", []).append("must be 'sha256:' followed by 64 lowercase hex digits")
        if errors:
            raise ValidationError(errors)
        check_policy_schemas(self)

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        # A stored version's package was checked when it was registered; re-check only if it changes.
        # Read __dict__, not the attributes: a deferred field (.only(), refresh_from_db(fields=…)) would
        # otherwise be loaded here, which calls from_db again.
        loaded = instance.__dict__
        instance.checked_package = (loaded.get("code"), loaded.get("code_digest"))
        return instance

    def package_files(self) -> dict[str, bytes]:
        if not self.code_digest:
            return {}
        # An uploaded asset is read from storage (code_asset, kept by save()), any other package fetched.
        asset = self.code_asset
        return review_files(self.code, self.code_digest,
                            lambda: read_asset_bytes(asset) if asset is not None else fetch_bytes(self.code, fetch_options()))

    def save(self, *args, **kwargs):
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "code" in update_fields:
            self.code_asset_id = (Asset.objects.filter(public_url=self.code).values_list("pk", flat=True).first()
                                  if self.code else None)
        super().save(*args, **kwargs)


class Asset(RecordModel):
    """A stored file (usually a policy package), addressed as ``{asset_name}:{version}-{tag}``."""

    lookup_field = "asset_uri"
    identity_fields = ("asset_uri", "asset_id", "asset_name", "asset_version")

    asset_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    asset_uri = models.CharField(max_length=255, unique=True, editable=False)
    asset_name = models.CharField(max_length=100, validators=[validate_name])
    asset_version = models.JSONField(help_text='{"version": …, "tag": …}')
    asset_metadata = models.JSONField(default=empty_dict, blank=True)
    asset_tags = models.JSONField(default=empty_list, blank=True)
    file_name = models.CharField(max_length=255, blank=True, default="")
    storage_key = models.CharField(max_length=512, editable=False, default="")
    size = models.BigIntegerField(default=0, editable=False)
    digest = models.CharField(max_length=71, editable=False, default="")
    public_url = models.CharField(max_length=2048, editable=False, default="")

    class Meta:
        ordering = ["asset_name", "asset_uri"]

    def compute_derived_fields(self) -> None:
        version = self.asset_version if isinstance(self.asset_version, dict) else {}
        self.asset_uri = versioned_uri(self.asset_name, str(version.get("version", "")), str(version.get("tag", "")))

    def clean(self):
        errors: dict[str, list[str]] = {}
        if not isinstance(self.asset_version, dict):
            errors["asset_version"] = ['must be an object {"version": …, "tag": …}']
        else:
            for key, validator in (("version", validate_version), ("tag", validate_release_tag)):
                try:
                    validator(self.asset_version.get(key) if isinstance(self.asset_version.get(key), str) else "")
                except ValidationError as exc:
                    errors.setdefault(f"asset_version.{key}", []).extend(exc.messages)
        if not isinstance(self.asset_metadata, dict):
            errors["asset_metadata"] = ["must be a JSON object"]
        if not isinstance(self.asset_tags, list) or not all(isinstance(t, str) for t in self.asset_tags):
            errors["asset_tags"] = ["must be a JSON array of strings"]
        if errors:
            raise ValidationError(errors)


def check_policy_schemas(policy: "PolicyRule") -> None:
    """Schemas well-formed, stored settings/parameters valid: the SDK's one validator (docs/runtime.md §3)."""
    from policygrid.errors import InputInvalid
    from policygrid.schema import SCHEMA_FIELDS, check_policy_record

    fields = (*SCHEMA_FIELDS, "management_commands_schema", "policy_settings", "policy_parameters")
    try:
        check_policy_record({name: getattr(policy, name) for name in fields})
    except InputInvalid as exc:
        raise ValidationError(exc.errors or {"policy_input_schema": [exc.message]}) from None


def _matches(pattern: str, value: str) -> bool:
    import re

    return re.match(pattern, value) is not None


def _network_problem(network) -> str | None:
    """Why ``policy_network`` is not {} or {"outbound_ports": [TCP ports]}, or None."""
    if not isinstance(network, dict):
        return 'must be a JSON object: {} (no network) or {"outbound_ports": [443]}'
    unknown = sorted(set(network) - {"outbound_ports"})
    if unknown:
        return f"unknown key {unknown[0]!r}: the only key is outbound_ports"
    ports = network.get("outbound_ports", [])
    if not isinstance(ports, list) or not all(
            isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535 for port in ports):
        return "outbound_ports must be a list of TCP ports (integers from 1 to 65535)"
    return None

