from collections.abc import Mapping
from typing import Any

from werkzeug import Request, Response

from plugdock.sdk import Endpoint


class HelloEndpoint(Endpoint):
    def _invoke(self, r: Request, values: Mapping[str, Any], settings: Mapping[str, Any]) -> Response:
        greeting = settings.get("greeting") or "Hello"
        name = r.args.get("name", "world")
        return Response(f"{greeting}, {name}!", status=200, content_type="text/plain")
