from plugdock.sdk import AgentStrategyProvider


class SingleShotAgentProvider(AgentStrategyProvider):
    pass
