"""HTTP client of the portal's API (docs/api.md): reads policies, runs Type 2 executions, uploads assets."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .environment import env
from .errors import Unavailable
from .fetch import FetchOptions, fetch_bytes
from .wire import error_from_envelope


def portal_url_from_env() -> str | None:
    # POLICY_SYSTEM_URL and POLICY_DB_URL are what clients of the earlier system set.
    return env("POLICYGRID_URL")


class PortalClient:
    """A thin client: every answer is the envelope of docs/api.md §1, and every failure raises its error class."""

    def __init__(self, base_url: str | None = None, token: str | None = None, timeout: float = 10,
                 public_url: str | None = None, auth_scheme: str = "Token") -> None:
        """``public_url``: the address the portal names its own assets under (``<public_url>/asset-object/…``)
        when this client reaches it at another one (an internal address, as the embedded run's executor
        does): such package URLs are fetched through ``base_url``."""
        import requests

        base_url = base_url or portal_url_from_env()
        if not base_url:
            raise Unavailable("no portal address: pass portal_url or set POLICYGRID_URL (or POLICY_SYSTEM_URL)")
        if "://" not in base_url:
            base_url = "http://" + base_url
        self.base_url = base_url.rstrip("/")
        self.public_url = public_url.rstrip("/") if public_url and public_url.rstrip("/") != self.base_url else None
        self.token = token if token is not None else os.environ.get("POLICYGRID_TOKEN") or None
        self.timeout = timeout
        self.session = requests.Session()
        if self.token:
            self.session.headers["Authorization"] = f"{auth_scheme} {self.token}"

    # --- plumbing -----------------------------------------------------------------------------------------

    def portal_location(self, code: str) -> str:
        """``code`` as this client reaches it: a path-only location (``/asset-object/<id>``) or one under
        ``public_url`` goes to ``base_url``; anything else is left alone."""
        if code.startswith("/"):
            return self.base_url + code
        if self.public_url and code.startswith(self.public_url + "/"):
            return self.base_url + code[len(self.public_url):]
        return code

    def fetch_options(self, **overrides: Any) -> FetchOptions:
        """Fetch options that send the token to the portal's own origin (asset URLs) and nowhere else."""
        headers = {"Authorization": f"Token {self.token}"} if self.token else {}
        return FetchOptions(headers=headers, trusted_origins=(self.base_url,), **overrides)

    def request(self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        """Send a request, return the decoded envelope on success, raise the matching error otherwise."""
        import requests

        url = f"{self.base_url}/{path.lstrip('/')}"
        try:
            response = self.session.request(method, url, timeout=timeout or self.timeout, **kwargs)
        except requests.Timeout as exc:
            raise Unavailable(f"the portal at {self.base_url} did not answer within {timeout or self.timeout}s") from exc
        except requests.RequestException as exc:
            raise Unavailable(f"cannot reach the portal at {self.base_url}: {exc.__class__.__name__}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            if response.status_code == 404:
                body = {"success": False, "message": f"{method} {url} answered 404"}
            else:
                raise Unavailable(f"the portal answered {method} {url} with HTTP {response.status_code} and no JSON envelope")
        if response.status_code >= 400 or body.get("success") is False:
            body.setdefault("message", f"{method} {url} failed with HTTP {response.status_code}")
            raise error_from_envelope(body, response.status_code if response.status_code >= 400 else 500)
        return body

    @staticmethod
    def _quote(key: str) -> str:
        return quote(key, safe=":+@")

    # --- policies -----------------------------------------------------------------------------------------

    def get_policy(self, uri: str) -> dict[str, Any]:
        return self.request("GET", f"policy/{self._quote(uri)}")["data"]

    def create_policy(self, record: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "policy", json=record)["data"]

    def execute_policy(
        self,
        executor_id: str,
        uri: str,
        input_data: Any,
        parameters: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
        timeout_seconds: float | None = None,
        *,
        dry_run: bool = False,
    ) -> Any:
        """Type 2: `POST /executor/<id>/execute_policy`; returns the eval output or raises its error class."""
        body = self._execution_body(uri, input_data, parameters, settings, timeout_seconds)
        if dry_run:
            body["dry_run"] = True
        wait = max(self.timeout, (timeout_seconds or 0) + 5)
        return self.request("POST", f"executor/{self._quote(executor_id)}/execute_policy", json=body, timeout=wait)[
            "data"
        ]

    def execute_policy_directly(self, uri: str, input_data: Any, parameters: dict[str, Any] | None = None,
                                settings: dict[str, Any] | None = None, timeout_seconds: float | None = None) -> Any:
        """`POST /execute_policy` of an executor service this client addresses (docs/executor.md): approved and
        deprecated versions only, as the service reads the record itself."""
        body = self._execution_body(uri, input_data, parameters, settings, timeout_seconds)
        wait = max(self.timeout, (timeout_seconds or 0) + 5)
        return self.request("POST", "execute_policy", json=body, timeout=wait)["data"]

    @staticmethod
    def _execution_body(uri, input_data, parameters, settings, timeout_seconds) -> dict[str, Any]:
        body: dict[str, Any] = {"policy_rule_uri": uri, "input_data": input_data}
        if parameters:
            body["parameters"] = parameters
        if settings:
            body["settings"] = settings
        if timeout_seconds is not None:
            body["timeout_seconds"] = timeout_seconds
        return body

    # --- assets -------------------------------------------------------------------------------------------

    def upload_asset(
        self,
        path: Path | str,
        name: str,
        version: str,
        tag: str,
        *,
        metadata: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        filename: str | None = None,
    ) -> dict[str, Any]:
        """`POST /upload_asset` (docs/api.md §4.2); returns the whole answer (`public_url`, `digest`, `asset_uri`…)."""
        asset_metadata: dict[str, Any] = {"asset_name": name, "asset_version": {"version": version, "tag": tag}}
        if metadata:
            asset_metadata["asset_metadata"] = metadata
        if tags:
            asset_metadata["asset_tags"] = tags
        path = Path(path)
        with path.open("rb") as handle:
            return self.request(
                "POST",
                "upload_asset",
                files={"asset": (filename or path.name, handle, "application/octet-stream")},
                data={"asset_metadata": json.dumps(asset_metadata)},
                timeout=max(self.timeout, 60),
            )

    def download(self, url: str, options: FetchOptions | None = None) -> bytes:
        """Bytes at `url`; a relative URL is taken on the portal, which also gets the token."""
        if "://" not in url and url.startswith("/"):
            url = self.base_url + url
        return fetch_bytes(url, options or self.fetch_options())

