"""News endpoints (API.md "Content beyond stories"): thin views over services and selectors."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import request_organization
from common.exceptions import PermissionDenied
from invitations.api import InviteRequestSerializer, _object_body, batch_answer, request_person
from invitations.services import content_invitations_send

from . import selectors, services
from .content import NEWS


class ArticlesApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=dict, responses={201: dict}, summary="Add a news article to the organization's feed")
    def post(self, request: Request) -> Response:
        organization = request_organization(request)
        if organization is None:
            raise PermissionDenied("Join an organization to add articles.")
        user = request.user if getattr(request.user, "pk", None) else None
        article = services.article_create(organization=organization, created_by=user, body=request.data)
        return Response(selectors.article_serialize(article), status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: dict}, summary="The organization's news articles", operation_id="news_articles_list")
    def get(self, request: Request) -> Response:
        articles = selectors.articles_for_organization(
            organization=request_organization(request), category=request.query_params.get("category", "")
        )[:200]
        return Response([selectors.article_serialize(a) for a in articles])


class ArticleApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: dict}, summary="One news article")
    def get(self, request: Request, article_id: int) -> Response:
        article = selectors.article_get_for_organization(article_id=article_id, organization=request_organization(request))
        return Response(selectors.article_serialize(article))


class ArticleInvitationsApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=InviteRequestSerializer, responses={201: dict}, summary="Share an article by invitation")
    def post(self, request: Request, article_id: int) -> Response:
        user = request_person(request)
        article = selectors.article_get_for_organization(article_id=article_id, organization=request_organization(request))
        body = _object_body(request)
        result = content_invitations_send(
            kind=NEWS, content=article, inviter=user, items=body.get("invitations"), message=body.get("message") or ""
        )
        return Response(batch_answer(result), status=status.HTTP_201_CREATED)
