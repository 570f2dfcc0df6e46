"""``ModelProvider``: checks provider credentials and hands out the provider's model instances."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from plugdock.sdk.model.base import AIModel
from plugdock.sdk.model.entities import AIModelEntity, ModelType


class ModelProvider:
    """Subclass it and implement ``validate_provider_credentials``."""

    def __init__(self, provider_schema: Mapping[str, Any] | None = None,
                 model_factory: Callable[[ModelType], AIModel | None] | None = None) -> None:
        self.provider_schema = dict(provider_schema or {})
        self._model_factory = model_factory

    def validate_provider_credentials(self, credentials: dict[str, Any]) -> None:
        """Raise ``CredentialsValidateFailedError`` when the credentials do not work."""
        raise NotImplementedError("implement validate_provider_credentials")

    def get_model_instance(self, model_type: ModelType) -> AIModel:
        instance = self._model_factory(model_type) if self._model_factory else None
        if instance is None:
            raise ValueError(f"this provider has no {model_type.value} model")
        return instance

    def models(self, model_type: ModelType) -> list[AIModelEntity]:
        return self.get_model_instance(model_type).predefined_models()
