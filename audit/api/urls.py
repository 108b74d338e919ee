"""API routes of the audit trail."""
from audit.api.views import AuditCheckpointViewSet, AuditEntryViewSet
from records.api.routers import ApiRouter

router = ApiRouter()
router.register("audit/checkpoints", AuditCheckpointViewSet, basename="audit-checkpoint")
router.register("audit", AuditEntryViewSet, basename="audit")
urlpatterns = router.urls
