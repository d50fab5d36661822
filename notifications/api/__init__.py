"""The notification platform's REST API, one module per resource; `notifications/urls.py`
mounts them. Views validate with a serializer, call one service or selector, and serialize
the answer (STYLE.md)."""
