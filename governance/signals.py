"""Signals of the governed lifecycle, so that apps whose records use governed versions react to it.

Governance imports no resource app: an app that uses a governed model connects its receivers (in its
``AppConfig.ready``), and the lifecycle learns of the dependents from what they return.
"""
from django.dispatch import Signal

#: Sent by ``governance.lifecycle.retire`` inside its transaction, after the status change, with
#: ``sender`` the version's model, ``version`` and ``actor``. Each receiver flags what of its app uses the
#: version and returns those records described for people ("function f1", "job 3f…"); the retire answer
#: and its audit entry list them all. A receiver that raises rolls the retirement back.
version_retired = Signal()

#: Sent by ``governance.lifecycle.submit`` (``copied_from`` None: check everything again, as at registration)
#: and ``new_version`` (``copied_from`` the source version), with ``sender`` the version's model and
#: ``version``, before the version's ``full_clean()``. Receivers run the checks that need more than the record
#: itself (a policy's package, fetched over the network) and raise ``ValidationError`` naming the field.
checking_version = Signal()
