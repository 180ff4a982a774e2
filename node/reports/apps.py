from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "node.reports"
    label = "reports"
    verbose_name = "Reports"
