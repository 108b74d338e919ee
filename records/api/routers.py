"""The API router: the spec's paths have no trailing slash, but one is tolerated."""
from rest_framework.routers import SimpleRouter


class ApiRouter(SimpleRouter):
    def __init__(self):
        super().__init__(trailing_slash=False)
        self.trailing_slash = "/?"

    def get_method_map(self, viewset, method_map):
        # Records created by their own routes (jobs, functions, assets: ``allow_create = False``) have no
        # ``POST /<resource>``: it answers 405 with an Allow header without POST, and the schema omits it.
        methods = super().get_method_map(viewset, method_map)
        if methods.get("post") == "create" and not getattr(viewset, "allow_create", True):
            del methods["post"]
        return methods
