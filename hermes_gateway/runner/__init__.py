"""The runner: the message pipeline and the parts it is made of.

``pipeline`` (GatewayRunner: auth -> command? -> session -> turn -> delivery), ``sessions``
(the session registry), ``supervisor`` (adapters, their state, counters and pauses, with the
shared backoff), ``turns`` (the sink a turn reports into), ``requests`` (turns whose caller
waits: API, cron, webhooks) and ``hosts`` (what adapters are handed instead of the runner).
"""

from hermes_gateway.runner.pipeline import GatewayRunner
from hermes_gateway.runner.sessions import SessionRegistry, SessionRuntime
from hermes_gateway.runner.supervisor import PlatformStats, PlatformSupervisor

__all__ = [
    "GatewayRunner",
    "PlatformStats",
    "PlatformSupervisor",
    "SessionRegistry",
    "SessionRuntime",
]
