"""Peer review: the review queue, decisions (whole image and per object), pinned comments, statistics."""
from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "annotator.review"
    label = "review"
