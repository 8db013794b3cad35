"""Tools the agent calls through OpenAI function calling.

Build the standard set with :func:`default_registry` and call tools only through
:meth:`ToolRegistry.call`, which never raises into the agent loop.
"""

from __future__ import annotations

from hermes_gateway.agent.tools.base import (
    ApprovalRequest,
    Tool,
    ToolContext,
    ToolResult,
)
from hermes_gateway.agent.tools.danger import dangerous_reason
from hermes_gateway.agent.tools.files import ReadFileTool, SearchFilesTool, WriteFileTool
from hermes_gateway.agent.tools.registry import ToolRegistry, default_registry
from hermes_gateway.agent.tools.session_search import SessionSearchTool
from hermes_gateway.agent.tools.terminal import TerminalTool

__all__ = [
    "ApprovalRequest",
    "ReadFileTool",
    "SearchFilesTool",
    "SessionSearchTool",
    "TerminalTool",
    "Tool",
    "ToolContext",
    "ToolRegistry",
    "ToolResult",
    "WriteFileTool",
    "dangerous_reason",
    "default_registry",
]
