"""Read-only admin for the audit trail: nobody adds, changes or deletes events through it."""

from django.contrib import admin

from node.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("seq", "occurred_at", "actor_username", "actor_role", "mfi", "action", "target_type",
                    "target_id", "ip", "request_id")
    list_filter = ("action", "target_type", "actor_role", "mfi")
    search_fields = ("=target_id", "=request_id", "actor_username", "action")
    date_hierarchy = "occurred_at"
    ordering = ("-seq",)
    list_select_related = ("mfi",)
    show_full_result_count = False
    readonly_fields = tuple(f.name for f in AuditEvent._meta.fields)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
