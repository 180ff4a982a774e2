"""Read-only admin for the ledger: entries are posted only by ``journal_post`` and never changed."""

from django.contrib import admin

from node.ledger.models import Account, JournalEntry, JournalLine


class ReadOnlyAdmin(admin.ModelAdmin):
    def get_readonly_fields(self, request, obj=None):
        return tuple(f.name for f in self.model._meta.fields)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ("mfi", "code", "name", "type", "is_contra", "is_active")
    list_filter = ("type", "is_active", "mfi")
    search_fields = ("=code", "name")
    list_select_related = ("mfi",)


class JournalLineInline(admin.TabularInline):
    model = JournalLine
    fields = ("account", "debit", "credit", "memo")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "mfi", "entry_date", "description", "reference_type", "reference_id", "reverses",
                    "posted_at", "created_by")
    list_filter = ("mfi", "reference_type")
    search_fields = ("=id", "=reference_id", "=source_key", "description")
    date_hierarchy = "entry_date"
    list_select_related = ("mfi", "created_by")
    show_full_result_count = False
    inlines = [JournalLineInline]
