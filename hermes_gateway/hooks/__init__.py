"""Event hooks: Hermes Agent's ``HERMES_HOME/hooks/<name>/HOOK.yaml`` + ``handler.py``.

A hook directory written for Hermes Agent works here unchanged: the same manifest keys
(``name``, ``description``, ``events``), the same handler (``handle(event_type, context)``,
sync or async), the same event names and context keys, ``command:*`` wildcards and the
``command:<name>`` decisions (``deny`` / ``handled`` / ``rewrite``). Unlike Hermes Agent, each
call has a timeout and runs off the gateway's event loop, so a hook that raises, hangs or
blocks is reported (log, :class:`~.events.HookFailed`, the app's Hooks pane) and never stops
the gateway or holds a turn.

Modules: :mod:`.loader` (find and import), :mod:`.calls` (one call with its timeout),
:mod:`.dispatch` (which hooks an event reaches, in order), :mod:`.bridge` (gateway events ->
hook events and their context), :mod:`.feature` (the :class:`HooksFeature`), :mod:`.events`.
"""

from hermes_gateway.hooks.events import HookFailed, HookInfo, HookProblem, HooksLoaded
from hermes_gateway.hooks.feature import HooksFeature

__all__ = ["HookFailed", "HookInfo", "HookProblem", "HooksFeature", "HooksLoaded"]
