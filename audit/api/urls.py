"""API routes of the audit trail."""
from audit.api.views import AuditEntryViewSet
from records.api.routers import ApiRouter

router = ApiRouter()
router.register("audit", AuditEntryViewSet, basename="audit")
urlpatterns = router.urls
