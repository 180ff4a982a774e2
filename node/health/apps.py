from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "node.health"
    label = "health"
