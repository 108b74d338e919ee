"""PolicyExecutor: a registered executor service (Type 2) and the home of jobs and functions."""
import ipaddress

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models

from executors.choices import ExecutorRuntime, ExecutorStatus, InfraStatus
from records.models import RecordModel
from records.validators import validate_dns_label

# The earlier system's NodePort for executors reached by their cluster's public IP.
CLUSTER_EXECUTOR_PORT = 30900


def is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class PolicyExecutor(RecordModel):
    """An executor service; its address is ``executor_host_uri`` (or derived from ``cluster_public_ip``)."""

    lookup_field = "executor_id"
    identity_fields = ("executor_id",)
    internal_fields = ("credential", "cluster_config")

    executor_id = models.CharField(max_length=63, unique=True, validators=[validate_dns_label])
    executor_host_uri = models.CharField(max_length=2048, blank=True, default="")
    cluster_public_ip = models.CharField(max_length=64, blank=True, default="")
    executor_metadata = models.JSONField(default=dict, blank=True)
    executor_hardware_info = models.JSONField(default=dict, blank=True)
    executor_status = models.CharField(
        max_length=20, choices=ExecutorStatus.choices, blank=True, default="", db_index=True
    )
    executor_runtime = models.CharField(
        max_length=20, choices=ExecutorRuntime.choices, default=ExecutorRuntime.LOCAL
    )
    infra_status = models.CharField(max_length=20, choices=InfraStatus.choices, default=InfraStatus.NONE)
    infra_message = models.TextField(blank=True, default="")
    last_seen = models.DateTimeField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    health_data = models.JSONField(default=dict, blank=True, help_text="the service's last /health answer")
    # This executor's own secret, sent (as a bearer token) with calls and probes to this executor only. Issued
    # at registration or rotation and shown once; never in the API's answers, the search index or the admin.
    credential = models.CharField(max_length=100, blank=True, default="", editable=False)
    # create-infra's kubeconfig, Fernet-encrypted at rest (executors.cluster.credentials); never answered or shown.
    cluster_config = models.TextField(blank=True, default="", editable=False)
    # What create-infra was asked for and made: namespace, image, replicas, resources, the objects' names.
    infra_config = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["executor_id"]
        verbose_name = "policy executor"

    def compute_derived_fields(self) -> None:
        if not self.executor_host_uri and self.cluster_public_ip and is_ip_address(self.cluster_public_ip):
            host = self.cluster_public_ip
            if ":" in host:  # an IPv6 literal needs brackets in a URL
                host = f"[{host}]"
            self.executor_host_uri = f"http://{host}:{CLUSTER_EXECUTOR_PORT}"
        if not self.executor_status:
            self.executor_status = ExecutorStatus.HEALTHY if self.executor_host_uri else ExecutorStatus.UNKNOWN

    def clean(self):
        errors: dict[str, list[str]] = {}
        if self.cluster_public_ip and not is_ip_address(self.cluster_public_ip):
            errors["cluster_public_ip"] = ["must be an IPv4 or IPv6 address"]
        if self.executor_host_uri:
            try:
                URLValidator(schemes=["http", "https"])(self.executor_host_uri)
            except ValidationError:
                # URLValidator refuses 'localhost:port' style hosts without a TLD in some forms; accept
                # plain http(s)://host[:port] too, as executors often live on loopback or cluster DNS.
                from urllib.parse import urlsplit

                try:
                    parts = urlsplit(self.executor_host_uri)
                    valid = parts.scheme in ("http", "https") and bool(parts.hostname)
                except ValueError:  # e.g. "Invalid IPv6 URL" for an unbalanced bracket
                    valid = False
                if not valid:
                    errors["executor_host_uri"] = ["must be an http:// or https:// URL"]
        for field in ("executor_metadata", "executor_hardware_info"):
            if not isinstance(getattr(self, field), dict):
                errors[field] = ["must be a JSON object"]
        if errors:
            raise ValidationError(errors)


class ExecutorProbe(models.Model):
    """One health probe of an executor (``executors.services.record_probe``): the history the executor's page
    plots. Bounded: each probe deletes that executor's probes beyond ``PROBES_KEPT``, newest kept."""

    PROBES_KEPT = 500

    executor = models.ForeignKey(PolicyExecutor, on_delete=models.CASCADE, related_name="probes")
    probed_at = models.DateTimeField(db_index=True)
    status = models.CharField(max_length=20, choices=ExecutorStatus.choices)
    latency_ms = models.FloatField(null=True, blank=True)
    reason = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-probed_at"]
        indexes = [models.Index(fields=["executor", "-probed_at"], name="executors_probe_recent")]
