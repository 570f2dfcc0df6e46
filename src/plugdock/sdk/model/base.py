"""``AIModel``: what every model kind shares: its schemas, credential check, error mapping, pricing."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Generator, Mapping
from contextlib import contextmanager
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar

from plugdock.sdk.errors import InvokeAuthorizationError, InvokeError
from plugdock.sdk.model.entities import (
    AIModelEntity,
    FetchFrom,
    I18nObject,
    ModelType,
    PriceInfo,
    PriceType,
)


class AIModel(ABC):
    """Base of all model kinds. Subclasses set ``model_type``; plugdock creates one instance per request."""

    model_type: ClassVar[ModelType]
    model_schemas: list[AIModelEntity]
    started_at: float

    def __init__(self, model_schemas: list[AIModelEntity] | None = None) -> None:
        self.started_at = 0
        self.model_schemas = [s for s in (model_schemas or []) if s.model_type == self.model_type]

    @contextmanager
    def timing_context(self) -> Generator[None, None, None]:
        self.started_at = time.perf_counter()
        try:
            yield
        finally:
            self.started_at = 0

    @abstractmethod
    def validate_credentials(self, model: str, credentials: Mapping[str, Any]) -> None:
        """Raise ``CredentialsValidateFailedError`` when the credentials do not work for ``model``."""

    @property
    def _invoke_error_mapping(self) -> dict[type[InvokeError], list[type[Exception]]]:
        """Map the provider library's exceptions onto the invoke-error kinds the host understands."""
        return {}

    def _transform_invoke_error(self, error: Exception) -> InvokeError:
        if isinstance(error, InvokeError):
            return error
        provider = self.__class__.__module__.split(".")[0]
        for invoke_error, model_errors in self._invoke_error_mapping.items():
            if isinstance(error, tuple(model_errors)):
                if invoke_error is InvokeAuthorizationError:
                    return invoke_error(f"[{provider}] Incorrect model credentials provided, please check and try "
                                        "again. ")
                return invoke_error(f"[{provider}] {invoke_error.description}, {error!s}")
        return InvokeError(f"[{provider}] Error: {error!s}")

    def get_price(self, model: str, credentials: Mapping[str, Any], price_type: PriceType, tokens: int) -> PriceInfo:
        schema = self.get_model_schema(model, credentials)
        pricing = schema.pricing if schema else None
        if pricing is None:
            zero = Decimal("0.0")
            return PriceInfo(unit_price=zero, unit=zero, total_amount=zero, currency="USD")
        unit_price = pricing.input if price_type == PriceType.INPUT else (pricing.output or Decimal("0.0"))
        total = (tokens * unit_price * pricing.unit).quantize(Decimal("0.0000001"), rounding=ROUND_HALF_UP)
        return PriceInfo(unit_price=unit_price, unit=pricing.unit, total_amount=total, currency=pricing.currency)

    def predefined_models(self) -> list[AIModelEntity]:
        return list(self.model_schemas)

    def get_model_schema(self, model: str, credentials: Mapping[str, Any] | None = None) -> AIModelEntity | None:
        for schema in self.model_schemas:
            if schema.model == model:
                return schema
        if credentials:
            return self.get_customizable_model_schema_from_credentials(model, credentials)
        return None

    def get_customizable_model_schema_from_credentials(self, model: str,
                                                       credentials: Mapping[str, Any]) -> AIModelEntity | None:
        return self.get_customizable_model_schema(model, credentials)

    def get_customizable_model_schema(self, model: str, credentials: Mapping[str, Any]) -> AIModelEntity | None:
        """Customizable models describe themselves from the credentials the user entered."""
        return None

    def _default_schema(self, model: str) -> AIModelEntity:
        return AIModelEntity(model=model, label=I18nObject(en_US=model), model_type=self.model_type,
                             fetch_from=FetchFrom.CUSTOMIZABLE_MODEL)

    def _get_num_tokens_by_gpt2(self, text: str) -> int:
        """A rough token count (words and punctuation) for providers with no tokenizer of their own."""
        import re

        return len(re.findall(r"\w+|[^\w\s]", text))
