"""Cross-cutting models of the portal: the record base class, API tokens, the search index."""
from portal.models.lifecycle import GovernedModel
from portal.models.records import RecordModel
from portal.models.search import SearchEntry
from portal.models.tokens import ApiToken

__all__ = ["ApiToken", "GovernedModel", "RecordModel", "SearchEntry"]
