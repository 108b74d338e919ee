"""Cross-cutting models of the portal: the record base class, API tokens, the search index, the audit trail."""
from portal.models.audit import AuditChainHead, AuditEntry
from portal.models.governance import KeyStatus, Release, Review, SigningKey, Submission
from portal.models.lifecycle import GovernedModel
from portal.models.records import RecordModel
from portal.models.search import SearchEntry
from portal.models.tokens import ApiToken

__all__ = [
    "ApiToken",
    "AuditChainHead",
    "AuditEntry",
    "GovernedModel",
    "KeyStatus",
    "RecordModel",
    "Release",
    "Review",
    "SearchEntry",
    "SigningKey",
    "Submission",
]
