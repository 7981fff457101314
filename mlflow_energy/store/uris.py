"""Tracking URIs as they may be shown to people: never with the credentials they carry."""

from __future__ import annotations

import re

HIDDEN = "***"
# user:password@ (or a token as the user name) between the scheme and the host
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")
# ?password=... as SQLAlchemy database URIs allow; any parameter whose name says it is a secret
_SECRET_PARAMETER = re.compile(r"(?P<name>[?&][^=&#]*(?:pass|pwd|secret|token|key)[^=&#]*=)[^&#]*", re.IGNORECASE)


def redact_uri(uri: str) -> str:
    """``http://user:secret@host:5000`` -> ``http://***@host:5000``; URIs without credentials
    (``sqlite:///mlflow.db``, a plain path) come back unchanged."""
    hidden = _USERINFO.sub(rf"\g<scheme>{HIDDEN}@", uri, count=1)
    return _SECRET_PARAMETER.sub(rf"\g<name>{HIDDEN}", hidden)


def redact_in(text: str, uri: str) -> str:
    """``text`` with every copy of ``uri`` (an error message may quote it) shown redacted."""
    return text.replace(uri, redact_uri(uri)) if uri else text


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


LOCAL_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves a local store by default


def ui_address(uri: str, path: str) -> str:
    """``path`` (a page inside the MLflow UI) on the UI that shows the store: the tracking server
    (redacted), or the one `mlflow ui` starts for a local store."""
    base = redact_uri(uri).rstrip("/") if is_server(uri) else LOCAL_UI
    return f"{base}/{path}"


def run_page(uri: str, experiment_id: str, run_id: str) -> str:
    """A run's page in the MLflow UI: on the server (redacted), or relative to the UI that
    serves the page holding the link (a report artifact of a local store)."""
    base = redact_uri(uri).rstrip("/") if is_server(uri) else ""
    return f"{base}/{run_path(experiment_id, run_id)}"


def run_path(experiment_id: str, run_id: str) -> str:
    """A run's address inside the MLflow UI: what links in descriptions use (the UI opens them itself)."""
    return f"#/experiments/{experiment_id}/runs/{run_id}"
