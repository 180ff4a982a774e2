from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from node.users.models import User


@admin.register(User)
class LetsemaUserAdmin(UserAdmin):
    list_display = ("username", "first_name", "last_name", "role", "mfi", "is_active")
    list_filter = ("role", "mfi", "is_active")
    fieldsets = (*UserAdmin.fieldsets, ("Letsema", {"fields": ("role", "mfi")}))
    add_fieldsets = (*UserAdmin.add_fieldsets, ("Letsema", {"fields": ("role", "mfi")}))
