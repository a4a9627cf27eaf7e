"""Forms of the people pages (validation only; writes go through services)."""
from __future__ import annotations

from django import forms


class AccountForm(forms.Form):
    username = forms.CharField(max_length=150)
    email = forms.EmailField(required=False, label="E-mail (optional)")
    is_admin = forms.BooleanField(required=False, label="Administrator (creates projects and accounts)")
    access = forms.ChoiceField(
        choices=[("link", "A set-password link to pass on"), ("password", "A generated password, shown once")],
        initial="link", widget=forms.RadioSelect, label="How they get in",
    )
