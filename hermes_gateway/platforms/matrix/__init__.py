"""Matrix through matrix-nio, inside our event loop: our own /sync loop, unencrypted rooms.

Importing this package is cheap: nio is imported only when the adapter is built.
"""

from hermes_gateway.platforms.registry import lazy_plugin

__all__ = ["PLUGIN"]

PLUGIN = lazy_plugin(
    "matrix",
    # A token or a password enables it, so credentials without MATRIX_HOMESERVER are one
    # clear failure naming the variable rather than a platform that silently never starts.
    lambda config: (
        bool(config.platforms.matrix.token or config.platforms.matrix.password)
        and config.platforms.matrix.enabled is not False
    ),
    "hermes_gateway.platforms.matrix.adapter:MatrixAdapter",
)
