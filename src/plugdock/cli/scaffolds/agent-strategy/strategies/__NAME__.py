from collections.abc import Generator
from typing import Any

from plugdock.sdk import AgentInvokeMessage, AgentStrategy
from plugdock.sdk.model import UserPromptMessage


class __CLASS__Strategy(AgentStrategy):
    def _invoke(self, parameters: dict[str, Any]) -> Generator[AgentInvokeMessage, None, None]:
        model = parameters["model"]
        query = str(parameters.get("query", ""))
        answer = ""
        for chunk in self.session.model.llm.invoke(
            model_config=model, prompt_messages=[UserPromptMessage(content=query)], stream=True
        ):
            answer += str(chunk.delta.message.content or "")
        yield self.create_text_message(answer)
