"""API routes of jobs."""
from jobs.api import views
from records.api.routers import ApiRouter

router = ApiRouter()
router.register("jobs", views.JobViewSet, basename="jobs")
urlpatterns = router.urls
