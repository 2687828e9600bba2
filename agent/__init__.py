"""The SemCoder debugging agent: a LangGraph loop of generate, execute, trace, reason and patch."""
