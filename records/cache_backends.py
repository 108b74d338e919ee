"""Django's file and Redis caches without the memcached key check (``CACHES`` in ``portal/settings.py``).

Django checks every key of every cache operation for what memcached would refuse (over 250 characters, spaces
or control characters) and warns; it costs a lazily compiled regular expression per key, several times per
API request on the hot routes. Neither of these backends has memcached's limits (the file cache names its
files by the key's MD5, Redis takes any bytes), and our keys are built by our code: Django's documentation
("Cache key warnings") provides for exactly this, a built-in backend subclassed to override ``validate_key``.
"""
from django.core.cache.backends.filebased import FileBasedCache
from django.core.cache.backends.redis import RedisCache


class FileCache(FileBasedCache):
    def validate_key(self, key):
        """Any key is a valid file cache key: it is hashed into a file name."""


class SharedRedisCache(RedisCache):
    def validate_key(self, key):
        """Any key is a valid Redis key."""
