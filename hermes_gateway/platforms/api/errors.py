"""OpenAI's error envelope, and the exception that carries one out of a handler."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A request we refuse, rendered as OpenAI's error envelope with its HTTP status.

    Attributes:
        status: HTTP status.
        message: One sentence saying what is wrong and, where possible, how to fix it.
        type: OpenAI's error type (``invalid_request_error``, ``server_error``, ...).
        param: The offending request field (``messages[1].content``), if one.
        code: OpenAI's machine-readable code (``invalid_api_key``, ...), if one.
        headers: Extra response headers (``Retry-After``).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type = status, message, type
        self.param, self.code, self.headers = param, code, headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.message, type=self.type, param=self.param, code=self.code)


def error_body(
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """OpenAI's error envelope: ``{"error": {message, type, param, code}}``."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)
