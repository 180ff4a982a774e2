from django.apps import AppConfig


class CobConfig(AppConfig):
    name = "node.cob"
    label = "cob"
    default_auto_field = "django.db.models.BigAutoField"
