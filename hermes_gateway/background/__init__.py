"""``/background``: prompts answered in their own sessions while the chat goes on.

A feature (:class:`~.feature.BackgroundFeature`) the entry point installs; see
:mod:`.service` for what a run does and :mod:`.runs` for how runs survive a restart.
"""
