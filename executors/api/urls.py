"""API routes of executors."""
from executors.api import views
from records.api.routers import ApiRouter

router = ApiRouter()
router.register("executor", views.PolicyExecutorViewSet, basename="executor")
urlpatterns = router.urls
