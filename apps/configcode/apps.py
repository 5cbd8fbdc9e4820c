from django.apps import AppConfig


class ConfigCodeConfig(AppConfig):
    name = "apps.configcode"
    label = "configcode"
    verbose_name = "Configuration as code"
