from django.contrib import admin

from node.mfis.models import Mfi


@admin.register(Mfi)
class MfiAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "home_district", "paybill_number", "is_active", "created_at")
    list_filter = ("home_district", "is_active")
    search_fields = ("code", "name", "paybill_number")
