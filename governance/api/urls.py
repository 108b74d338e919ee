"""API routes of governance that belong to no resource: the published release-signing keys."""
from django.urls import path

from governance.api.keys import keys

urlpatterns = [path("keys", keys, name="keys")]
