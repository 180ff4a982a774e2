from django.apps import AppConfig


class CreditConfig(AppConfig):
    name = "node.credit"
    label = "credit"
    default_auto_field = "django.db.models.BigAutoField"
