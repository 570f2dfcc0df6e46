from typing import Any

from plugdock.sdk import ModelProvider
from plugdock.sdk.errors import CredentialsValidateFailedError


class __CLASS__Provider(ModelProvider):
    def validate_provider_credentials(self, credentials: dict[str, Any]) -> None:
        if not credentials.get("api_key"):
            raise CredentialsValidateFailedError("api_key is required")
