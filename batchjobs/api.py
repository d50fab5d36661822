"""`GET /api/v1/batch-jobs/{id}/` (API.md "Content beyond stories")."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors, services


class BatchJobApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: dict}, summary="A batch job's progress")
    def get(self, request: Request, job_id: int) -> Response:
        job = selectors.batch_job_get_for(job_id=job_id, user=request.user, auth=request.auth)
        # Live progress: the counters catch up with deliveries resolved since the last refresh.
        if services.batch_jobs_refresh(job_ids=[job.pk]):
            job.refresh_from_db()
        return Response(selectors.batch_job_serialize(job))
