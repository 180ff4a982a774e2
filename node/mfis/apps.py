from django.apps import AppConfig


class MfisConfig(AppConfig):
    name = "node.mfis"
    label = "mfis"
    verbose_name = "Microfinance institutions"
