from django.apps import AppConfig


class WebConfig(AppConfig):
    """The server-rendered web interface (borrowers and MFI staff) over the same services as the API."""

    name = "node.web"
    label = "web"

    def ready(self) -> None:
        # Sesotho is not one of Django's built-in languages: register it so {% get_language_info %} and the
        # language switch can name it. The catalogue is node/web/locale/st/LC_MESSAGES/django.po.
        from django.conf.locale import LANG_INFO

        LANG_INFO.setdefault("st", {"bidi": False, "code": "st", "name": "Sesotho", "name_local": "Sesotho"})
