from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin

from .models import ApprovalPolicy, ApprovalRequest, Decision


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(ReadOnlyAdmin):
    list_display = ["environment", "required_approvals", "expires_after", "rejection_rejects"]
    list_select_related = ["environment"]


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdmin):
    list_display = ["deployment", "environment", "status", "required_approvals", "expires_at", "decided_at"]
    list_filter = ["status"]
    list_select_related = ["deployment", "environment"]


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ["request", "user", "verdict", "created_at"]
    list_select_related = ["request", "user"]
