"""Telegram through python-telegram-bot, inside our event loop."""
