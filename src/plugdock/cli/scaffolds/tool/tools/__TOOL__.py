from collections.abc import Generator
from typing import Any

from plugdock.sdk import Tool, ToolInvokeMessage


class __TOOL_CLASS__Tool(Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        text = str(tool_parameters.get("text", ""))
        yield self.create_text_message(text)
        yield self.create_json_message({"text": text, "length": len(text)})
