"""Forms of the server-rendered pages (validation only; writes go through services)."""
from __future__ import annotations

from django import forms

from annotator.projects.models import QueueOrder, Role


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    guidelines = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}), required=False, help_text="Markdown, shown to annotators in the editor."
    )
    required_accepts = forms.IntegerField(min_value=1, max_value=10, initial=1, label="Reviewers who must accept")
    queue_order = forms.ChoiceField(choices=QueueOrder.choices, initial=QueueOrder.PRIORITY)
    labels = forms.CharField(
        required=False,
        help_text="New project only: one label per line, optionally followed by a colour, e.g. 'car #ff0000'.",
        widget=forms.Textarea(attrs={"rows": 4}),
    )

    def clean_labels(self) -> list[dict]:
        specs = []
        for line in self.cleaned_data["labels"].splitlines():
            parts = line.split()
            if not parts:
                continue
            color = parts[-1] if len(parts) > 1 and parts[-1].startswith("#") else None
            name = " ".join(parts[:-1] if color else parts)
            if color and (len(color) != 7 or any(c not in "0123456789abcdefABCDEF" for c in color[1:])):
                raise forms.ValidationError(f"{color} is not a #rrggbb colour (line: {line!r})")
            specs.append({"name": name, "color": color})
        names = [s["name"] for s in specs]
        if len(names) != len(set(names)):
            raise forms.ValidationError("Label names must be unique.")
        return specs


class LabelForm(forms.Form):
    name = forms.CharField(max_length=100)
    color = forms.RegexField(regex=r"^#[0-9a-fA-F]{6}$", initial="#4363d8", widget=forms.TextInput(attrs={"type": "color"}))


class MemberForm(forms.Form):
    username = forms.CharField(max_length=254, label="Username or e-mail")
    role = forms.ChoiceField(choices=Role.choices)
