"""Portal pages of functions (under /portal/)."""
from django.urls import path

from functions import views

urlpatterns = [
    path("functions/", views.FunctionListView.as_view(), name="portal-function-list"),
    path("functions/<str:key>/", views.function_detail, name="portal-function"),
]
