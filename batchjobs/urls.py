from django.urls import path

from . import api

urlpatterns: list = []

api_urlpatterns = [path("batch-jobs/<int:job_id>/", api.BatchJobApi.as_view(), name="batch-job")]
