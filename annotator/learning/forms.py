"""Forms of the models page: they turn the posted strings into values; learning.params holds the rules."""
from __future__ import annotations

from typing import Any

from django import forms

from ml.nms import DEFAULT_NMS_IOU

from .models import ModelVersion
from .params import MAX_BATCH


class PreannotateForm(forms.Form):
    model = forms.ChoiceField(help_text="Which model proposes the objects.")
    threshold = forms.FloatField(min_value=0, max_value=1, initial=0.5, help_text="Keep proposals scoring at least this.")
    scope = forms.ChoiceField(choices=[("unannotated", "Images without annotations"), ("all", "All images")], initial="unannotated")
    batch_size = forms.IntegerField(min_value=1, max_value=MAX_BATCH, initial=4)
    nms_iou = forms.FloatField(
        required=False, min_value=0, max_value=1, initial=DEFAULT_NMS_IOU, label="Duplicate overlap",
        help_text="Proposals of one label whose masks overlap more than this (IoU) are one object; 1 keeps them all.",
    )
    label_map = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3, "placeholder": "apple = fruit\nbanana = fruit"}),
        help_text="Model class = project label, one per line. Classes named like a label map to it by default; unmapped classes are dropped.",
    )

    def __init__(self, *args: Any, versions: list[ModelVersion], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [("active", "Active model"), ("coco", "COCO pretrained (torchvision)")]
        choices += [(str(v.pk), f"#{v.pk} {v.name}") for v in versions]
        self.fields["model"].choices = choices

    def clean_label_map(self) -> dict[str, str | None]:
        mapping: dict[str, str | None] = {}
        for number, line in enumerate(self.cleaned_data["label_map"].splitlines(), start=1):
            if not line.strip():
                continue
            if "=" not in line:
                raise forms.ValidationError(f"line {number}: write 'model class = project label'")
            cls, label = (part.strip() for part in line.split("=", 1))
            mapping[cls] = label or None
        return mapping


class TrainForm(forms.Form):
    epochs = forms.IntegerField(min_value=1, max_value=500, required=False, help_text="Empty: the default for this machine (CPU or GPU).")
    held_out = forms.IntegerField(min_value=0, max_value=50, initial=20, label="Held out for evaluation (%)")
