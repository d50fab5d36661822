"""`GET /api/v1/me/recommendations/`: what to share next, with whom, in which style."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import request_organization

from .api import request_person
from .recommendations import recommendations_for_user


class RecommendationsApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: dict}, summary="Stories and articles to share, with whom and in which style")
    def get(self, request: Request) -> Response:
        user = request_person(request)
        items = recommendations_for_user(user=user, organization=request_organization(request))
        return Response({"recommendations": [item.as_dict() for item in items]})
