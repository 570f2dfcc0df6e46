"""Agent strategies: an agent loop that calls models and tools back through the session."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plugdock.sdk.messages import AgentInvokeMessage
from plugdock.sdk.tool import ToolLike, ToolProvider

if TYPE_CHECKING:
    from plugdock.sdk.session import Session


@dataclass
class AgentRuntime:
    user_id: str | None = None


class AgentStrategyProvider(ToolProvider):
    """The provider of one or more agent strategies; credentials are not used."""

    def validate_credentials(self, credentials: dict[str, Any]) -> None:
        return None


AgentProvider = AgentStrategyProvider


class AgentStrategy(ToolLike[AgentInvokeMessage]):
    """Implement ``_invoke``; use ``self.session.model.llm`` and ``self.session.tool`` to drive the loop."""

    def __init__(self, runtime: AgentRuntime, session: Session) -> None:
        self.runtime = runtime
        self.session = session
        self.response_type = AgentInvokeMessage

    @abstractmethod
    def _invoke(self, parameters: dict[str, Any]) -> Generator[AgentInvokeMessage, None, None]:
        """Run the strategy; yield messages (logs, text, tool results) as they happen."""

    def invoke(self, parameters: dict[str, Any]) -> Generator[AgentInvokeMessage, None, None]:
        return self._invoke(self._convert_parameters(parameters))

    def increase_usage(self, final_llm_usage_dict: dict[str, Any], usage: Any) -> None:
        """Add ``usage`` into ``final_llm_usage_dict["usage"]`` (an ``LLMUsage``)."""
        current = final_llm_usage_dict.get("usage")
        if not current:
            final_llm_usage_dict["usage"] = usage
            return
        for name in ("prompt_tokens", "completion_tokens", "prompt_price", "completion_price", "total_price",
                     "total_tokens"):
            setattr(current, name, getattr(current, name) + getattr(usage, name))
