"""The API router: the spec's paths have no trailing slash, but one is tolerated."""
from rest_framework.routers import SimpleRouter


class ApiRouter(SimpleRouter):
    def __init__(self):
        super().__init__(trailing_slash=False)
        self.trailing_slash = "/?"
