"""API views of jobs (records; submission and cancellation come with the job runtime)."""
from jobs.api.serializers import JobSerializer
from jobs.filtersets import JobFilterSet
from jobs.models import Job
from records.api.viewsets import RecordViewSet


class JobViewSet(RecordViewSet):
    queryset = Job.objects.all()
    serializer_class = JobSerializer
    filterset_class = JobFilterSet
    ordering_fields = ["created_at", "job_status", "started_at", "finished_at"]
    allow_create = False
    http_method_names = ["get", "post", "delete", "head", "options"]
