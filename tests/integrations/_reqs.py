"""What each framework's venv holds (the versions issue 24 names)."""

REQUIREMENTS = {
    "smolagents": ["smolagents==1.26.*"],
    "langchain": ["langchain-core>=1,<2", "langgraph>=1,<2"],
    "codeact": ["langgraph-codeact==0.1.*"],
    "llama_index": ["llama-index-core==0.14.*"],
    "autogen": ["autogen-core==0.7.*", "autogen-agentchat==0.7.*", "autogen-ext==0.7.*"],
    "openai_agents": ["openai-agents==0.24.*"],
}
