"""Consensus: several annotators draw each image, their versions are merged and scored for agreement."""
from django.apps import AppConfig


class ConsensusConfig(AppConfig):
    name = "annotator.consensus"
    label = "consensus"
