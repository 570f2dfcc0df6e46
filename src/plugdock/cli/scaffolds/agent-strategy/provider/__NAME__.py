from plugdock.sdk import AgentStrategyProvider


class __CLASS__Provider(AgentStrategyProvider):
    pass
