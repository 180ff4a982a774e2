from django.apps import AppConfig


class PeersConfig(AppConfig):
    name = "node.peers"
    label = "peers"
    verbose_name = "Federation endpoints"
