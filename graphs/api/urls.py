"""API routes of graphs."""
from graphs.api import views
from records.api.routers import ApiRouter

router = ApiRouter()
router.register("graphs", views.GraphViewSet, basename="graphs")
urlpatterns = router.urls
