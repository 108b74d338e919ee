"""Admin of functions."""
from django.contrib import admin

from functions.models import Function
from records.admin import RecordAdmin


@admin.register(Function)
class FunctionAdmin(RecordAdmin):
    list_display = ("function_id", "function_status", "function_executor_id", "function_policy_rule_uri", "replicas")
    list_filter = ("function_status", "function_executor_id")
    search_fields = ("function_id", "function_policy_rule_uri")
    machine_fields = ("function_executor_uri", "function_status", "function_message", "function_policy_data")

    def has_add_permission(self, request):
        return False  # functions exist only by deployment
