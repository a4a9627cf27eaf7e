"""Forms of the server-rendered pages (validation only; writes go through services)."""
from __future__ import annotations

import json

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
    break_reminder_minutes = forms.IntegerField(
        min_value=0, max_value=24 * 60, initial=90, required=False, label="Break reminder (minutes)",
        help_text="The editor suggests a break after this long in one work session; 0 turns it off, empty means 90.",
    )
    consensus_annotators = forms.IntegerField(
        min_value=1, max_value=10, initial=1, required=False, label="Annotators per image",
        help_text="With more than one, each image goes to that many different annotators and the merge of their "
                  "versions goes to review, lowest agreement first.",
    )
    consensus_timeout_hours = forms.IntegerField(
        min_value=1, max_value=24 * 30, initial=24, required=False, label="Hours to finish a version",
        help_text="With several annotators per image: a version not submitted in this time goes to someone else.",
    )
    ground_truth_feedback = forms.BooleanField(
        required=False, label="Show the score after a ground-truth image",
        help_text="An annotator who submits a ground-truth image sees their score and the conflicts; "
                  "off, nothing tells them the image was one.",
    )
    labels = forms.CharField(
        required=False,
        help_text="New project only: one label per line, optionally followed by a colour, e.g. 'car #ff0000'.",
        widget=forms.Textarea(attrs={"rows": 4}),
    )

    def clean_break_reminder_minutes(self) -> int:
        value = self.cleaned_data["break_reminder_minutes"]
        return 90 if value is None else value

    def clean_consensus_annotators(self) -> int:
        value = self.cleaned_data["consensus_annotators"]
        return 1 if value is None else value

    def clean_consensus_timeout_hours(self) -> int:
        value = self.cleaned_data["consensus_timeout_hours"]
        return 24 if value is None else value

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


KINDS = [
    ("text", "Text"),
    ("number", "Number"),
    ("integer", "Whole number"),
    ("boolean", "Yes / no"),
    ("one", "One of"),
    ("several", "Several of"),
]


def spec_kind(spec: dict) -> str:
    """The editor's kind for a schema spec (annotations/attributes.py)."""
    if spec.get("choices"):
        return "several" if spec.get("multiple") else "one"
    return {"boolean": "boolean", "integer": "integer", "number": "number"}.get(spec.get("type", ""), "text")


def _words(values: list | None) -> str:
    return ", ".join(str(v) for v in values or [])


class AttributeSpecForm(forms.Form):
    """One attribute of a label's schema, in words (turned into a schema spec by `spec()`)."""

    name = forms.CharField(max_length=100, required=False)
    kind = forms.ChoiceField(choices=KINDS, initial="text")
    choices = forms.CharField(required=False, max_length=4000, help_text="Comma-separated")
    min = forms.FloatField(required=False)
    max = forms.FloatField(required=False)
    default = forms.CharField(required=False, max_length=2000)
    required = forms.BooleanField(required=False)
    # Keys of an existing spec this form does not show (max_length): kept as they were.
    keep = forms.CharField(required=False, widget=forms.HiddenInput)

    @classmethod
    def initial_for(cls, name: str, spec: dict) -> dict:
        kind = spec_kind(spec)
        default = spec.get("default")
        if isinstance(default, bool):
            default = "yes" if default else "no"
        elif isinstance(default, list):
            default = _words(default)
        return {
            "name": name, "kind": kind, "choices": _words(spec.get("choices")), "min": spec.get("min"), "max": spec.get("max"),
            "default": "" if default is None else str(default), "required": bool(spec.get("required")),
            "keep": json.dumps({k: v for k, v in spec.items() if k == "max_length"}),
        }

    def spec(self) -> dict:
        """The schema spec; ValidationError naming the field when the words do not make one."""
        data = self.cleaned_data
        kind = data["kind"]
        spec: dict = {"type": {"boolean": "boolean", "integer": "integer", "number": "number"}.get(kind, "string")}
        choices = [c.strip() for c in (data.get("choices") or "").split(",") if c.strip()]
        if kind in ("one", "several"):
            if not choices:
                raise forms.ValidationError(f"{data['name']}: list the choices, separated by commas.")
            spec["choices"] = choices
            if kind == "several":
                spec["multiple"] = True
        for bound in ("min", "max"):
            value = data.get(bound)
            if value is not None:
                if kind not in ("number", "integer"):
                    raise forms.ValidationError(f"{data['name']}: {bound} is for numbers.")
                spec[bound] = int(value) if kind == "integer" and float(value).is_integer() else value
        default = (data.get("default") or "").strip()
        if default:
            if kind == "boolean":
                spec["default"] = default.lower() in ("yes", "true", "1", "on")
            elif kind in ("number", "integer"):
                try:
                    number = float(default)
                except ValueError:
                    raise forms.ValidationError(f"{data['name']}: the default must be a number.") from None
                spec["default"] = int(number) if kind == "integer" and number.is_integer() else number
            elif kind == "several":
                spec["default"] = [c.strip() for c in default.split(",") if c.strip()]
            else:
                spec["default"] = default
        if data.get("required"):
            spec["required"] = True
        if kind == "text":
            try:
                kept = json.loads(data.get("keep") or "{}")
            except ValueError:
                kept = {}
            if isinstance(kept, dict) and isinstance(kept.get("max_length"), int):
                spec["max_length"] = kept["max_length"]
        return spec


AttributeSpecFormSet = forms.formset_factory(AttributeSpecForm, extra=2, can_delete=True, max_num=64, validate_max=True)
