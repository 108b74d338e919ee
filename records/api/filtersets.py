"""The base filterset: a ``q`` search parameter over the fields a resource names, and the lookup of a model's
filterset, so that the pages filter and search exactly as the API's lists do."""
import django_filters
from django.db.models import Q

_BY_MODEL: dict[type, type["RecordFilterSet"]] = {}


class RecordFilterSet(django_filters.FilterSet):
    search_fields: tuple[str, ...] = ()

    q = django_filters.CharFilter(method="search", label="search")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # The metaclass sets ``_meta`` after this hook runs: read the declaration itself.
        model = getattr(getattr(cls, "Meta", None), "model", None)
        if model is not None:
            _BY_MODEL.setdefault(model, cls)

    def search(self, queryset, name, value):
        condition = Q()
        for field in self.search_fields:
            condition |= Q(**{f"{field}__icontains": value})
        return queryset.filter(condition)


def filterset_for(model) -> type[RecordFilterSet] | None:
    """The API's filterset of ``model`` (the first declared for it), once its app's filtersets are imported."""
    return _BY_MODEL.get(model)
