from django.contrib import admin

from .models import BatchJob
from .services import batch_jobs_refresh


@admin.register(BatchJob)
class BatchJobAdmin(admin.ModelAdmin):
    list_display = ("id", "job_type", "organization", "status", "progress", "total_count", "success_count",
                    "failed_count", "created_at")
    list_filter = ("job_type", "status")
    raw_id_fields = ("organization", "created_by", "story")
    readonly_fields = [f.name for f in BatchJob._meta.fields]

    def get_changelist_instance(self, request):
        batch_jobs_refresh()  # live progress: active jobs catch up before the page is listed
        return super().get_changelist_instance(request)

    @admin.display(description="Progress")
    def progress(self, obj: BatchJob) -> str:
        percent = round(100 * obj.processed_count / obj.total_count) if obj.total_count else 100
        return f"{obj.processed_count}/{obj.total_count} ({percent}%)"

    def has_add_permission(self, request) -> bool:
        return False
