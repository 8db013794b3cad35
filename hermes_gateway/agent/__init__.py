"""The agent: a streaming, tool-calling loop over an OpenAI-compatible model."""
