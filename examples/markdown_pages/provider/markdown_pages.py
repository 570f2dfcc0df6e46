from collections.abc import Mapping
from typing import Any

from plugdock.sdk import DatasourceProvider
from plugdock.sdk.errors import DatasourceCredentialValidationError


class MarkdownPagesProvider(DatasourceProvider):
    def _validate_credentials(self, credentials: Mapping[str, Any]) -> None:
        """Raise DatasourceCredentialValidationError when the credentials do not work."""
        if not credentials.get("api_key") or credentials.get("api_key") == "invalid":
            raise DatasourceCredentialValidationError("the API key is invalid")
