from django.apps import AppConfig


class RepaymentsConfig(AppConfig):
    name = "node.repayments"
    label = "repayments"
    default_auto_field = "django.db.models.BigAutoField"
