"""People: accounts created in the app (by admins), invitations into projects (by managers), own passwords."""
from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "annotator.accounts"
    label = "accounts"
