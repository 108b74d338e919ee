"""Portal pages of functions (under /portal/)."""
from django.urls import path

from functions import views

urlpatterns = [
    path("functions/", views.FunctionListView.as_view(), name="portal-function-list"),
    # "-" can't be a function's name (a DNS-1123 label starts with a letter or digit).
    path("functions/-/deploy/", views.function_deploy, name="portal-function-deploy"),
    path("functions/<str:key>/", views.function_detail, name="portal-function"),
    path("functions/<str:key>/call/", views.function_call, name="portal-function-call"),
    path("functions/<str:key>/manage/", views.function_manage, name="portal-function-manage"),
    path("functions/<str:key>/remove/", views.function_remove, name="portal-function-remove"),
]
