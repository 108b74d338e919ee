"""Admin of functions: the deployment's fields are read-only (written by the function services); deleting one
removes it through the service, which stops its replicas first (a bare row delete would leave them running)."""
from django.contrib import admin, messages
from policygrid.errors import PolicyGridError
from rest_framework.exceptions import APIException

from functions import services
from functions.models import Function
from records.admin import RecordAdmin


@admin.register(Function)
class FunctionAdmin(RecordAdmin):
    list_display = ("function_id", "function_status", "function_executor_id", "function_policy_rule_uri", "replicas")
    list_filter = ("function_status", "function_executor_id")
    search_fields = ("function_id", "function_policy_rule_uri")
    machine_fields = ("function_id", "function_executor_id", "function_executor_uri", "function_policy_rule_uri",
                      "function_status", "function_message", "function_policy_data", "policy_rule_parameters",
                      "policy_rule_settings", "replicas", "autoscaling", "resources", "node_selector",
                      "policy_retired")

    def has_add_permission(self, request):
        return False  # functions exist only by deployment

    def delete_model(self, request, obj):
        self._remove(request, obj)

    def delete_queryset(self, request, queryset):
        for function in queryset:
            self._remove(request, function)

    def _remove(self, request, function):
        try:
            services.remove_function(request.user, function.function_id)
        except (APIException, PolicyGridError) as exc:
            self.message_user(request, f"function {function.function_id}: {getattr(exc, 'detail', exc)}",
                              messages.WARNING)
