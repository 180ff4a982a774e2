from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "node.core"
    label = "core"
