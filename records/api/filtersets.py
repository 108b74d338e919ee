"""The base filterset: a ``q`` search parameter over the fields a resource names."""
import django_filters
from django.db.models import Q


class RecordFilterSet(django_filters.FilterSet):
    search_fields: tuple[str, ...] = ()

    q = django_filters.CharFilter(method="search", label="search")

    def search(self, queryset, name, value):
        condition = Q()
        for field in self.search_fields:
            condition |= Q(**{f"{field}__icontains": value})
        return queryset.filter(condition)
