"""Keeps the search index of the query language in step with the records: rebuilt on save, dropped on delete;
and invalidates the records' cached columns (``records.cache``) on both."""
from django.db.models.signals import post_delete, post_save

from records.cache import forget_record
from records.search import index_record, searchable_models, unindex_record


def record_saved(sender, instance, raw=False, using=None, update_fields=None, **kwargs):
    # Writers that bypass save() (bulk_create, QuerySet.update) send no signal: they call reindex().
    index_record(instance, update_fields)


def record_deleted(sender, instance, using=None, **kwargs):
    unindex_record(sender, instance.pk, using)


for model in searchable_models():
    post_save.connect(record_saved, sender=model, dispatch_uid=f"search-index-save-{model._meta.label_lower}")
    post_delete.connect(record_deleted, sender=model, dispatch_uid=f"search-index-delete-{model._meta.label_lower}")
    post_save.connect(forget_record, sender=model, dispatch_uid=f"record-cache-save-{model._meta.label_lower}")
    post_delete.connect(forget_record, sender=model, dispatch_uid=f"record-cache-delete-{model._meta.label_lower}")
