"""REST endpoints for consensus: an image's versions, their agreement and their merge (for review)."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.core.access import Capability
from annotator.core.api import load_image

from .models import ReplicaStatus
from .selectors import consensus_of


class VersionSerializer(serializers.Serializer):
    annotator = serializers.CharField()
    status = serializers.ChoiceField(choices=ReplicaStatus.choices)
    version = serializers.IntegerField()
    claimed_at = serializers.DateTimeField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    annotations = serializers.ListField(child=serializers.DictField())


class ClusterSerializer(serializers.Serializer):
    uids = serializers.ListField(child=serializers.CharField(allow_null=True), help_text="The objects of the versions that match.")
    found_by = serializers.FloatField(help_text="The share of annotators who drew it.")
    mean_iou = serializers.FloatField(allow_null=True, help_text="Mean pairwise mask IoU (None: only one drew it).")
    label = serializers.JSONField()
    label_agreement = serializers.FloatField()
    score = serializers.FloatField(help_text="mean_iou x found_by (0 for an object only one annotator drew).")


class PairSerializer(serializers.Serializer):
    annotators = serializers.ListField(child=serializers.CharField())
    f1 = serializers.FloatField()
    mean_iou = serializers.FloatField(allow_null=True)


class MergedSerializer(serializers.Serializer):
    label = serializers.JSONField()
    geometry = serializers.DictField()
    support = serializers.IntegerField(help_text="How many annotators drew it.")
    sources = serializers.ListField(child=serializers.CharField(allow_null=True))
    agreement = serializers.FloatField(allow_null=True)
    mean_iou = serializers.FloatField(allow_null=True)


class ConsensusSerializer(serializers.Serializer):
    image = serializers.IntegerField()
    annotators = serializers.IntegerField(help_text="The project's consensus_annotators.")
    complete = serializers.BooleanField(help_text="All versions are in and merged into the image's annotations.")
    agreement = serializers.FloatField(allow_null=True, help_text="The image's agreement score (0..1) once complete.")
    versions = VersionSerializer(many=True)
    clusters = ClusterSerializer(many=True)
    pairs = PairSerializer(many=True)
    merge = MergedSerializer(many=True, help_text="The merge of the submitted versions (the image's annotations hold it as revision action 'consensus').")


class ConsensusApi(APIView):
    @extend_schema(responses=ConsensusSerializer)
    def get(self, request: Request, pk: int) -> Response:
        image = load_image(request, pk, Capability.REVIEW)
        return Response(ConsensusSerializer(consensus_of(image)).data)
