"""Platform adapters: connect, normalise updates into MessageEvents, deliver."""
