from typing import Any

from plugdock.sdk import ToolProvider
from plugdock.sdk.errors import ToolProviderCredentialValidationError


class __CLASS__Provider(ToolProvider):
    def _validate_credentials(self, credentials: dict[str, Any]) -> None:
        """Raise ToolProviderCredentialValidationError when the credentials do not work."""
        if credentials.get("api_key") == "invalid":
            raise ToolProviderCredentialValidationError("the API key is invalid")
