"""Discord through discord.py, inside our event loop."""
