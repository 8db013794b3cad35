"""The OpenAI-compatible HTTP API and signed webhooks on one aiohttp server."""
