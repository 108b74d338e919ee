"""API routes of functions."""
from functions.api import views
from records.api.routers import ApiRouter

router = ApiRouter()
router.register("function", views.FunctionViewSet, basename="function")
urlpatterns = router.urls
