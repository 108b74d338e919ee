"""API views of jobs (docs/api.md §4.4): the records, submission, cancel, logs and the runner's result post."""
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action

from jobs import services
from jobs.api.serializers import JobSerializer
from jobs.filtersets import JobFilterSet
from jobs.models import Job
from records.api.viewsets import MAX_TAIL, RecordViewSet, ok, tail_parameter

SubmitRequest = {"application/json": services.SUBMIT_SCHEMA}


class JobViewSet(RecordViewSet):
    queryset = Job.objects.all()
    serializer_class = JobSerializer
    filterset_class = JobFilterSet
    ordering_fields = ["created_at", "job_status", "started_at", "finished_at"]
    allow_create = False
    http_method_names = ["get", "post", "delete", "head", "options"]
    action_permissions = {"submit": "jobs.add_job", "submit_to": "jobs.add_job", "cancel": "jobs.change_job",
                          "logs": "jobs.view_job"}
    read_actions = (*RecordViewSet.read_actions, "logs")

    def get_object(self):
        key = self.kwargs.get(self.lookup_field)
        if not services.is_uuid(key):  # no job has such a key (and the UUID column would refuse it with a 400)
            raise Http404(f"no job with job_id '{key}'")
        return super().get_object()

    @extend_schema(request=SubmitRequest, responses={201: JobSerializer, 400: OpenApiTypes.OBJECT,
                                                     403: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT,
                                                     409: OpenApiTypes.OBJECT, 501: OpenApiTypes.OBJECT,
                                                     502: OpenApiTypes.OBJECT},
                   operation_id="jobs_submit_without_executor",
                   description="Submit a job without an executor: the resource allocator policy (`alloc`, else the "
                               "deployment's default) chooses one; 404 when that allocator is not registered, 409 "
                               "when it finds no executor, 502 when it fails or chooses an unknown or unhealthy one.")
    @action(detail=False, methods=["post"], url_path="submit")
    def submit(self, request):
        return self._submitted(services.submit_job(request.user, request.data, None))

    @extend_schema(request=SubmitRequest, responses={201: JobSerializer, 400: OpenApiTypes.OBJECT,
                                                     404: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT,
                                                     501: OpenApiTypes.OBJECT, 502: OpenApiTypes.OBJECT},
                   description="Submit a job to this executor: the record exists from now (pending), running once "
                               "the executor's runtime took it; 201 with `job_id` and the record.")
    @action(detail=False, methods=["post"], url_path=r"submit/(?P<executor_id>[^/]+)")
    def submit_to(self, request, executor_id=None):
        return self._submitted(services.submit_job(request.user, request.data, executor_id))

    def _submitted(self, job):
        return ok(self.get_serializer(job).data, status.HTTP_201_CREATED, job_id=str(job.job_id))

    @extend_schema(request=None, responses={200: JobSerializer, 409: OpenApiTypes.OBJECT},
                   description="Cancel a pending or running job (its processes are killed); 409 once it has ended.")
    @action(detail=True, methods=["post"], url_path="cancel")
    def cancel(self, request, job_id=None):
        return ok(self.get_serializer(services.cancel_job(request.user, self.get_object())).data)

    @extend_schema(parameters=[OpenApiParameter("tail", {"type": "integer", "minimum": 0, "maximum": MAX_TAIL},
                                                description="only the last N lines")],
                   responses={code: OpenApiTypes.OBJECT for code in (200, 400, 404, 502, 504)},
                   description="The job's log text (its runner's lines, what the policy printed, the runtime's notes), "
                               "read from its executor: 502 when the executor can't be reached, 504 when it does "
                               "not answer in time.")
    @action(detail=True, methods=["get"], url_path="logs")
    def logs(self, request, job_id=None):
        tail = tail_parameter(request)
        text = services.job_logs(self.get_object(), tail)
        return ok(text, logs=text)

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: OpenApiTypes.OBJECT, 403: OpenApiTypes.OBJECT,
                                                           409: OpenApiTypes.OBJECT},
                   parameters=[OpenApiParameter("X-Job-Token", str, OpenApiParameter.HEADER, required=True)],
                   description="The job's runner posts its outcome here with the job's own token (header "
                               "`X-Job-Token`), once: another token answers 403, a second post 409.")
    @action(detail=True, methods=["post"], url_path="result", authentication_classes=[], permission_classes=[])
    def result(self, request, job_id=None):
        job = services.record_result(job_id, request.headers.get("X-Job-Token"), request.data)
        return ok({"job_id": str(job.job_id), "job_status": job.job_status})
