"""API routes of accounts: a user's own tokens."""
from accounts.api.views import ApiTokenViewSet
from records.api.routers import ApiRouter

router = ApiRouter()
router.register("tokens", ApiTokenViewSet, basename="tokens")
urlpatterns = router.urls
