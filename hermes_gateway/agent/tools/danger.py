"""Does a shell command need a person's approval? A small parser, not a text match.

The terminal tool runs model-written commands with ``/bin/sh -c``. A text match over the raw
command let ``sh -c 'rm -rf D'``, ``echo cm0gLXJmIC8= | base64 -d | sh`` and
``python3 -c "import shutil; shutil.rmtree('D')"`` through, because the dangerous words were
inside quotes, behind a pipe or in another language. This module reads the command the way a
shell would, well enough for this one question:

1. heredoc bodies are cut out first and kept with the command that reads them;
2. the rest is split into words with :mod:`shlex` (quotes and backslashes removed, so
   ``\\rm -r''f`` is ``rm -rf``) and into simple commands at ``;``, ``&``, ``&&``, ``||``,
   newlines, pipes, subshell and process-substitution parentheses; ``$(...)`` and backticks
   inside words are read as commands of their own;
3. each simple command loses its leading assignments and wrappers (``sudo``, ``env``,
   ``nice``, ``timeout``, ``xargs``, ``nohup``, ``exec``, ...) and is judged by its name:
   shells and ``eval`` with code are read again (recursively), interpreters with ``-c`` /
   ``-e`` code have that code scanned for deletes, writes, shells and obfuscation, and a pipe
   or heredoc into a shell or interpreter runs code nobody has seen;
4. redirections and ``tee`` / ``cp`` / ``mv`` / ``dd of=`` targets are checked against the
   places whose overwrite breaks a machine or an account (system directories, raw disks,
   shell start-up files, ``~/.ssh``).

When the command cannot be read (unbalanced quotes, a command name that comes from a
variable or a substitution, code built at run time for ``eval``), the answer is "not sure",
which asks too. The answer is a reason for the operator, or ``None``.

Rules that are judgements, kept deliberately:

* **Every recursive delete asks**, ``rm -rf ./build`` inside the workspace included: it is
  irreversible, the prompt is cheap, and which relative paths are "safe" is exactly what a
  person should judge. Plain ``rm file`` does not ask; ``rm`` fed a list by ``xargs`` or
  ``find -exec`` does (a mass delete), as does ``find -delete``.
* ``git rm -r`` and ``git clean -n`` do not ask (recoverable / dry run); ``git clean -f`` does.
* Code for an interpreter asks when it deletes, writes files, starts processes or decodes
  code at run time; printing and computing do not. Words inside string literals count too
  (``print("os.remove")`` asks): the scan is lexical and errs on the side of asking.
* Single-quoted ``'$(...)'`` is read as a substitution as well (shlex drops the quote kind);
  that can only make something ask, never let something through.

This is a guard against accidents and casual tricks, not a sandbox: a determined user with a
shell can always write code this does not recognise. That is why remote chats run shell
commands only with approval by default (see ``access/approvals.py``).
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["dangerous_reason"]

MAX_DEPTH = 6
"""Nested ``sh -c`` / ``eval`` levels read before giving up (and asking)."""

_OPERATORS = sorted(
    ["&&", "||", ";;", "|&", "<<<", "<<-", "<<", ">>", "&>>", "&>", ">&", "<&", ">|", "<(",
     ">(", "|", "&", ";", "(", ")", "<", ">", "\n"],
    key=len,
    reverse=True,
)  # fmt: skip
_SEPARATORS = frozenset({"&&", "||", ";;", ";", "&", "\n", "(", ")", "<(", ">("})
_PIPES = frozenset({"|", "|&"})
_REDIRECTS = frozenset({">", ">>", ">|", "&>", "&>>", ">&", "<", "<&", "<<<"})
_WRITE_REDIRECTS = frozenset({">", ">>", ">|", "&>", "&>>", ">&"})
_KEYWORDS = frozenset(
    {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for", "in", "case",
     "esac", "{", "}", "!", "function", "select", "time"}
)  # fmt: skip

SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish", "csh", "tcsh"})
_PYTHON = re.compile(r"^(?:python[\d.]*|pypy[\d.]*)$")
INTERPRETER_CODE_FLAGS = {
    "perl": ("-e", "-E"),
    "ruby": ("-e",),
    "node": ("-e", "--eval", "-p", "--print"),
    "nodejs": ("-e", "--eval", "-p", "--print"),
    "deno": ("eval",),
    "php": ("-r",),
    "lua": ("-e",),
    "Rscript": ("-e",),
    "osascript": ("-e",),
}

# wrapper -> (options that take a value, positional arguments before the command)
_WRAPPERS: dict[str, tuple[frozenset[str], int]] = {
    "sudo": (frozenset({"-u", "-g", "-h", "-p", "-C", "-r", "-t", "-U", "-D", "-R"}), 0),
    "doas": (frozenset({"-u", "-C"}), 0),
    "env": (frozenset({"-u", "--unset", "-C", "--chdir"}), 0),
    "nice": (frozenset({"-n", "--adjustment"}), 0),
    "ionice": (frozenset({"-c", "-n", "-p", "--class", "--classdata"}), 0),
    "nohup": (frozenset(), 0),
    "setsid": (frozenset(), 0),
    "exec": (frozenset({"-a"}), 0),
    "command": (frozenset(), 0),
    "builtin": (frozenset(), 0),
    "time": (frozenset({"-f", "-o", "--format", "--output"}), 0),
    "timeout": (frozenset({"-s", "-k", "--signal", "--kill-after"}), 1),
    "stdbuf": (frozenset({"-i", "-o", "-e"}), 0),
    "unbuffer": (frozenset(), 0),
    "watch": (frozenset({"-n", "--interval", "-d"}), 0),
    "chroot": (frozenset({"--userspec", "--groups"}), 1),
    "flock": (frozenset({"-w", "--timeout", "-E"}), 1),
    "busybox": (frozenset(), 0),
    "strace": (frozenset({"-o", "-e", "-p", "-s"}), 0),
    "caffeinate": (frozenset(), 0),
    "catchsegv": (frozenset(), 0),
}
_XARGS_VALUE_OPTS = frozenset(
    {"-I", "-i", "-n", "-P", "-L", "-l", "-d", "-E", "-e", "-s", "-a", "--delimiter",
     "--max-args", "--max-procs", "--arg-file", "--replace", "--max-lines"}
)  # fmt: skip

# Places whose overwrite (or recursive permission change) breaks the machine or an account.
_SYSTEM_DIRS = ("etc", "usr", "bin", "sbin", "lib", "lib32", "lib64", "boot", "var", "root",
                "home", "opt", "srv", "sys", "proc", "dev", "System", "Library", "private")  # fmt: skip
_HARMLESS_DEVICES = re.compile(r"^/dev/(?:null|zero|stdout|stderr|stdin|tty|fd/\d+|u?random)$")
_BLOCK_DEVICE = re.compile(
    r"^/dev/(?:sd[a-z]|hd[a-z]|vd[a-z]|xvd[a-z]|nvme\d|mmcblk\d|md\d|dm-\d|disk\d|rdisk\d|mapper/)"
)
_HOME_START_FILES = re.compile(
    r"^(?:~|\$HOME|\$\{HOME\})/(?:\.(?:bashrc|bash_profile|bash_login|profile|zshrc|zprofile|"
    r"zshenv|zlogin|cshrc|tcshrc|kshrc|inputrc|xinitrc|xprofile|pam_environment|gitconfig)|"
    r"\.ssh(?:/|$)|\.gnupg(?:/|$)|\.config/(?:autostart|systemd|fish)(?:/|$)|\.hermes(?:/|$)|"
    r"\.aws(?:/|$)|\.kube(?:/|$)|\.docker/config|\.netrc$)"
)

# Interpreter code: what makes it ask. Lexical, over the code text.
_CODE_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"rmtree|remove_tree|rm_rf|rm_r\b|rmSync|rmdirSync|\brmdir\b|removedirs"),
     "recursive delete in interpreter code"),
    (re.compile(r"\bunlink|\bos\.remove\b|\bremove\s*\(|File\.delete|FileUtils\.rm|fs\.rm\b|"
                r"\.rm\s*\(|deleteSync|\bunlinkSync"),
     "file delete in interpreter code"),
    (re.compile(r"\bos\.system\b|\bsubprocess\b|\bos\.popen\b|\bos\.exec|\bos\.spawn|"
                r"\bpty\.spawn|\bchild_process\b|\bexecSync\b|\bspawnSync\b|\bexecFile|"
                r"\bsystem\s*\(|\bsystem\s+['\"]|\bexec\s*\(|\bexec\s+['\"]|`|\bqx\b|%x|"
                r"IO\.popen|Open3|\bspawn\s*\(|Deno\.run|Deno\.Command|\bshell_exec\b|"
                r"\bpassthru\b|\bproc_open\b|\bpopen\b|do shell script"),
     "interpreter code that runs commands"),
    (re.compile(r"""\bopen\s*\([^)]*['"][rb+]*[wax][bt+]*['"]|write_text|write_bytes|"""
                r"""writeFileSync|writeFile\b|appendFile|File\.write|File\.open\([^)]*['"][wa]|"""
                r"""\bopen\s*\(\s*[A-Z]*\s*,\s*['"]?\+?[>]|\btruncate\b|\bshutil\.(?:move|copy)|"""
                r"""\bos\.(?:rename|replace|chmod|chown)|\bchmod\b|\bchown\b|file_put_contents|"""
                r"""\bcreateWriteStream\b|\bfs\.(?:rename|chmod|chown)"""),
     "interpreter code that writes files"),
    (re.compile(r"\bfork\s*\(|\bos\.fork\b"), "interpreter code that forks processes"),
    (re.compile(r"\beval\s*\(|\bexec\s*\(|\bcompile\s*\(|__import__|b64decode|base64|"
                r"decodestring|fromCharCode|Buffer\.from|\bpack\s*\(|\\x[0-9a-fA-F]{2}|"
                r"codecs\.decode|\bimportlib\b|getattr\s*\(\s*__builtins__"),
     "interpreter code decoded or built at run time"),
]  # fmt: skip

_FORK_BOMB = re.compile(r"(?P<f>[\w:.]+)\s*\(\s*\)\s*\{\s*(?P=f)\s*\|\s*(?P=f)\s*&\s*;?\s*\}")
_HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][\w.-]*)\1")
_SUBST_START = re.compile(r"\$\(|<\(|>\(")


@dataclass
class _Simple:
    """One simple command: its words, redirections and how its input arrives."""

    words: list[str] = field(default_factory=list)
    redirects: list[tuple[str, str]] = field(default_factory=list)
    piped_from: _Simple | None = None
    heredocs: list[str] = field(default_factory=list)
    process_input: bool = False
    """An argument is ``<(...)``: the command reads another command's output as a file."""


class _Unsure(Exception):
    """The command cannot be read well enough to say it is harmless."""


def dangerous_reason(command: str) -> str | None:
    """Why ``command`` needs the operator's approval, or ``None`` when it does not."""
    try:
        return _check(command, 0)
    except _Unsure as exc:
        return f"not sure what this runs ({exc}); asking to be safe"


def _check(command: str, depth: int) -> str | None:
    if depth > MAX_DEPTH:
        raise _Unsure("too deeply nested")
    if _FORK_BOMB.search(command):
        return "fork bomb"
    for simple in _parse(command):
        reason = _judge(simple, depth)
        if reason is not None:
            return reason
    return None


# --- reading -----------------------------------------------------------------------------


def _cut_heredocs(text: str) -> tuple[str, list[str]]:
    """Remove heredoc bodies from ``text``; return the rest and the bodies in order."""
    bodies: list[str] = []
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        for match in _HEREDOC.finditer(line):
            delim = match.group(2)
            body: list[str] = []
            while i < len(lines) and lines[i].strip() != delim:
                body.append(lines[i])
                i += 1
            i += 1  # the delimiter line
            bodies.append("\n".join(body))
    return "\n".join(out), bodies


def _tokens(text: str) -> list[str]:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|()<>\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        raw = list(lexer)
    except ValueError as exc:
        raise _Unsure(f"cannot parse it: {exc}") from None
    out: list[str] = []
    comment = False
    for tok in raw:
        if comment:
            if tok == "\n":
                comment = False
                out.append(tok)
            continue
        if tok and set(tok) <= set(";&|()<>\n"):
            out.extend(_split_operators(tok))
        elif tok.startswith("#") and (not out or out[-1] in _OPERATORS):
            comment = True
        else:
            out.append(tok)
    return out


def _split_operators(tok: str) -> Iterator[str]:
    while tok:
        for op in _OPERATORS:
            if tok.startswith(op):
                yield op
                tok = tok[len(op) :]
                break
        else:  # pragma: no cover - every punctuation char is an operator prefix
            yield tok
            return


def _parse(command: str) -> list[_Simple]:
    text, bodies = _cut_heredocs(command.replace("\\\n", ""))
    text = re.sub(r"`([^`]*)`", r"$(\1)", text)
    tokens = _tokens(text)
    simples: list[_Simple] = []
    current = _Simple()
    in_find_exec = False
    i = 0

    def close() -> None:
        nonlocal current, in_find_exec
        if current.words or current.redirects or current.heredocs:
            simples.append(current)
        current = _Simple()
        in_find_exec = False

    while i < len(tokens):
        tok = tokens[i]
        if in_find_exec and tok in (";", "+"):
            current.words.append(";")
            in_find_exec = False
        elif tok in _PIPES:
            prev = current
            close()
            current.piped_from = prev
        elif tok in ("<(", ">("):
            # The outer command is judged with the words it has so far; the substitution's
            # commands follow as simple commands of their own.
            current.process_input = current.process_input or tok == "<("
            simples.append(current)
            current = _Simple()
        elif tok in _SEPARATORS:
            close()
        elif tok in ("<<", "<<-"):
            if i + 1 < len(tokens):
                i += 1
            if bodies:
                current.heredocs.append(bodies.pop(0))
        elif tok in _REDIRECTS:
            target = tokens[i + 1] if i + 1 < len(tokens) else ""
            if current.words and current.words[-1].isdigit() and tok not in ("<", "<<<"):
                current.words.pop()  # the fd number of 2>file
            current.redirects.append((tok, target))
            i += 1
        else:
            if tok == "$" and i + 1 < len(tokens) and tokens[i + 1] == "(":
                # an unquoted $( ... ): its commands follow as their own simple commands
                if not current.words:
                    raise _Unsure("the command name comes from a command substitution")
                current.words.append("$(...)")
            else:
                current.words.append(tok)
                if tok in ("-exec", "-execdir", "-ok", "-okdir") and _name(current) == "find":
                    in_find_exec = True
        i += 1
    close()
    return _dedupe(simples)


def _dedupe(simples: list[_Simple]) -> list[_Simple]:
    seen: set[int] = set()
    out = []
    for s in simples:
        if id(s) not in seen:
            seen.add(id(s))
            out.append(s)
    return out


def _name(simple: _Simple) -> str:
    words = _strip_prefixes(simple.words)
    return os.path.basename(words[0]) if words else ""


def _strip_prefixes(words: list[str]) -> list[str]:
    """Drop keywords, assignments and wrappers (sudo, env, nice, ...) before the command."""
    i = 0
    while i < len(words):
        w = words[i]
        base = os.path.basename(w)
        if w in _KEYWORDS or re.match(r"^[A-Za-z_]\w*=", w):
            i += 1
            continue
        if base in _WRAPPERS:
            value_opts, positional = _WRAPPERS[base]
            i += 1
            while i < len(words) and words[i].startswith("-") and words[i] != "-":
                opt = words[i]
                i += 1
                if opt == "--":
                    break
                if opt in value_opts and i < len(words):
                    i += 1
                if base == "env" and opt in ("-S", "--split-string") and i < len(words):
                    return [*_split_string(words[i]), *words[i + 1 :]]
            while base == "env" and i < len(words) and re.match(r"^[A-Za-z_]\w*=", words[i]):
                i += 1
            i += positional
            continue
        break
    return words[i:]


def _split_string(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        raise _Unsure("cannot parse env -S") from None


# --- judging -----------------------------------------------------------------------------


def _judge(simple: _Simple, depth: int) -> str | None:
    for body in simple.heredocs:
        reason = _judge_stdin_code(simple, body, depth)
        if reason:
            return reason
    for op, target in simple.redirects:
        if op in _WRITE_REDIRECTS and target and not target.isdigit() and target != "-":
            reason = _overwrite_reason(target)
            if reason:
                return reason
    for word in simple.words:
        reason = _substitutions(word, depth)
        if reason:
            return reason
    words = _strip_prefixes(simple.words)
    if not words:
        return None
    head = words[0]
    if head.startswith("$") or "$(" in head:
        raise _Unsure("the command name comes from a variable or a substitution")
    name = os.path.basename(head)
    args = words[1:]
    if name == "xargs":
        return _judge_xargs(args, depth)
    return _judge_command(name, args, simple, depth)


def _substitutions(word: str, depth: int) -> str | None:
    """Read ``$(...)`` inside a (quoted) word as a command of its own."""
    for match in _SUBST_START.finditer(word):
        inner = _balanced(word, match.end())
        if inner is None:
            raise _Unsure("unbalanced $( )")
        reason = _check(inner, depth + 1)
        if reason:
            return reason
    return None


def _balanced(text: str, start: int) -> str | None:
    level = 1
    for i in range(start, len(text)):
        if text[i] == "(":
            level += 1
        elif text[i] == ")":
            level -= 1
            if level == 0:
                return text[start:i]
    return None


def _judge_xargs(args: list[str], depth: int) -> str | None:
    i = 0
    while i < len(args) and args[i].startswith("-"):
        opt = args[i]
        i += 1
        if opt in _XARGS_VALUE_OPTS and i < len(args):
            i += 1
    rest = _strip_prefixes(args[i:])
    if not rest:
        return None
    name = os.path.basename(rest[0])
    if name in ("rm", "shred", "unlink"):
        return "mass delete of a list of files (xargs rm)"
    return _judge_command(name, rest[1:], _Simple(words=rest), depth)


def _judge_command(name: str, args: list[str], simple: _Simple, depth: int) -> str | None:
    flags = _short_flags(args)
    if name == "rm":
        if "r" in flags or "R" in flags or "--recursive" in args:
            return "recursive delete (rm -r)"
        if any(_is_system_path(a) for a in args if not a.startswith("-")):
            return "delete of a system file"
        return None
    if name in ("shred", "wipefs", "blkdiscard"):
        return "irreversible wipe of a file or disk"
    if name == "find":
        return _judge_find(args, depth)
    if name == "git":
        sub = [a for a in args if not a.startswith("-")][:1]
        if sub == ["clean"] and ("f" in _short_flags(args) or "--force" in args):
            if "n" not in _short_flags(args) and "--dry-run" not in args:
                return "deletes untracked files (git clean -f)"
        return None
    if re.match(r"^(?:mkfs(?:\.\w+)?|mke2fs|mkswap|fdisk|sfdisk|gdisk|sgdisk|parted)$", name):
        return "disk formatting or partitioning"
    if name == "dd":
        for a in args:
            if a.startswith("of="):
                reason = _overwrite_reason(a[3:])
                if reason:
                    return f"dd: {reason}"
        return None
    if name in ("shutdown", "reboot", "halt", "poweroff"):
        return "shutdown or reboot of the machine"
    if name in ("init", "telinit") and args[:1] in (["0"], ["6"]):
        return "shutdown or reboot of the machine"
    if name == "systemctl" and any(a in ("poweroff", "reboot", "halt", "kexec") for a in args):
        return "shutdown or reboot of the machine"
    if name == "kill" and "-1" in args[1:] + ([args[0]] if args and args[0] == "-1" else []):
        return "kill every process (kill -1)"
    if name in ("chmod", "chown", "chgrp"):
        operands = [a for a in args if not a.startswith("-")][1:]
        recursive = "R" in flags or "--recursive" in args
        if any(_is_system_path(p, recursive_root=True) for p in operands) and recursive:
            return "recursive permission/owner change on a system path"
        if any(_is_root(p) for p in operands):
            return "permission/owner change of the root directory"
        return None
    if name == "crontab" and "r" in flags:
        return "removes every cron job (crontab -r)"
    if name == "tee":
        for a in args:
            if not a.startswith("-"):
                reason = _overwrite_reason(a)
                if reason:
                    return reason
        return None
    if name in ("cp", "mv", "install", "ln", "rsync", "truncate"):
        operands = [a for a in args if not a.startswith("-")]
        if name == "mv" and any(_is_root(a) or _is_home(a) for a in operands[:-1]):
            return "moves the root or home directory"
        if operands:
            reason = _overwrite_reason(operands[-1])
            if reason:
                return reason
        if name == "rsync" and "--delete" in " ".join(args):
            return "rsync --delete removes files at the destination"
        return None
    if name in ("awk", "gawk", "mawk", "nawk"):
        program = next((a for a in args if not a.startswith("-")), "")
        if re.search(r"\bsystem\s*\(|\|\s*\"|\"\s*\|\s*getline|\|&", program):
            return "awk code that runs commands"
        return None
    if name in ("at", "batch") and (simple.piped_from is not None or simple.heredocs):
        return "schedules shell code to run later (at)"
    if name in SHELLS or name in ("su", "ssh", "trap", "eval", "source", "."):
        return _judge_shell(name, args, simple, depth)
    if _PYTHON.match(name) or name in INTERPRETER_CODE_FLAGS:
        return _judge_interpreter(name, args, simple, depth)
    return None


def _short_flags(args: list[str]) -> set[str]:
    out: set[str] = set()
    for a in args:
        if a.startswith("-") and not a.startswith("--") and len(a) > 1 and not a[1:].isdigit():
            out.update(a[1:])
    return out


def _judge_find(args: list[str], depth: int) -> str | None:
    if "-delete" in args:
        return "recursive delete (find -delete)"
    for i, a in enumerate(args):
        if a in ("-exec", "-execdir", "-ok", "-okdir"):
            inner: list[str] = []
            for w in args[i + 1 :]:
                if w in (";", "+"):
                    break
                inner.append(w)
            rest = _strip_prefixes(inner)
            if not rest:
                continue
            name = os.path.basename(rest[0])
            if name in ("rm", "shred", "unlink"):
                return "mass delete (find -exec rm)"
            reason = _judge_command(name, rest[1:], _Simple(words=rest), depth + 1)
            if reason:
                return reason
    return None


def _judge_shell(name: str, args: list[str], simple: _Simple, depth: int) -> str | None:
    if name == "eval":
        text = " ".join(args)
        if "$" in text:
            raise _Unsure("eval of code built at run time")
        return _check(text, depth + 1)
    if name == "trap":
        return _check(args[0], depth + 1) if args else None
    if name in ("source", "."):
        if simple.process_input or any(a.startswith("/dev/") for a in args):
            return "runs the output of another command as a script"
        return None
    if name == "ssh":
        # ssh host [command...]: the remote command is shell text
        operands = [a for a in args if not a.startswith("-")]
        return _check(" ".join(operands[1:]), depth + 1) if len(operands) > 1 else None
    code = _option_value(args, ("-c",), combined=True)
    if code is not None:
        if "$" in code and re.search(r"^\s*\"?\$", code):
            raise _Unsure("shell code built at run time")
        return _check(code, depth + 1)
    if name == "su":
        return None
    if simple.process_input:
        return "runs the output of another command as a script"
    script_args = [a for a in args if not a.startswith("-")]
    if simple.piped_from is not None and (not script_args or "s" in _short_flags(args)):
        return _pipe_reason(simple, "a shell")
    if script_args and script_args[0] in ("/dev/stdin", "-"):
        return _pipe_reason(simple, "a shell") if simple.piped_from else None
    return None


def _pipe_reason(simple: _Simple, what: str) -> str:
    src = simple.piped_from
    src_name = _name(src) if src is not None else ""
    if src_name in ("curl", "wget", "fetch", "http", "aria2c"):
        return f"downloaded script piped into {what}"
    if src_name in ("base64", "xxd", "openssl", "gunzip", "zcat", "rev", "tr", "uudecode"):
        return f"decoded text piped into {what}"
    return f"text piped into {what} (runs code nobody has seen)"


def _option_value(args: list[str], options: tuple[str, ...], *, combined: bool) -> str | None:
    """The value after ``-c`` (also in ``-lc``/``-ec`` bundles when ``combined``)."""
    for i, a in enumerate(args):
        hit = a in options or (
            combined
            and a.startswith("-")
            and not a.startswith("--")
            and any(o.lstrip("-") in a[1:] for o in options if len(o) == 2)
        )
        if hit:
            return args[i + 1] if i + 1 < len(args) else ""
    return None


def _judge_interpreter(name: str, args: list[str], simple: _Simple, depth: int) -> str | None:
    flags = ("-c",) if _PYTHON.match(name) else INTERPRETER_CODE_FLAGS[name]
    code: str | None = None
    for i, a in enumerate(args):
        if a in flags or (
            a.startswith("-") and not a.startswith("--") and flags[0][1:] in a[1:] and len(a) <= 4
        ):
            code = args[i + 1] if i + 1 < len(args) else ""
            break
        if name == "deno" and a == "eval":
            code = " ".join(args[i + 1 :])
            break
        if not a.startswith("-") and name != "deno":
            return None  # a script file: like running ./script
    if code is not None:
        if _PYTHON.match(name) and re.search(r"^\s*import\s+this\s*$", code):
            return None
        return _code_reason(code, name)
    if name == "perl" and "i" in _short_flags(args):
        return None
    if simple.process_input:
        return f"runs the output of another command with {name}"
    if simple.piped_from is not None:
        return _pipe_reason(simple, name)
    return None


def _judge_stdin_code(simple: _Simple, body: str, depth: int) -> str | None:
    words = _strip_prefixes(simple.words)
    if not words:
        return None
    name = os.path.basename(words[0])
    if name in SHELLS and _option_value(words[1:], ("-c",), combined=True) is None:
        return _check(body, depth + 1)
    if _PYTHON.match(name) or name in INTERPRETER_CODE_FLAGS:
        return _code_reason(body, name)
    return None


def _code_reason(code: str, name: str) -> str | None:
    for pattern, reason in _CODE_RULES:
        if pattern.search(code):
            return f"{reason} ({name})"
    return None


# --- paths -------------------------------------------------------------------------------


def _is_root(path: str) -> bool:
    return path.rstrip("/") == "" and path.startswith("/") or path in ("/*", "/.", "/..")


def _is_home(path: str) -> bool:
    return path.rstrip("/") in ("~", "$HOME", "${HOME}") or path in ("~/*", "$HOME/*")


def _is_system_path(path: str, *, recursive_root: bool = False) -> bool:
    if _is_root(path) or _is_home(path):
        return True
    clean = os.path.normpath(path) if path.startswith("/") else path
    if not clean.startswith("/"):
        return False
    top = clean.split("/")[1]
    if top == "tmp":
        return False
    return top in _SYSTEM_DIRS


def _overwrite_reason(target: str) -> str | None:
    """Why writing to ``target`` breaks something, or None."""
    if _HARMLESS_DEVICES.match(target):
        return None
    if _BLOCK_DEVICE.match(target):
        return "write to a raw disk device"
    if _HOME_START_FILES.match(target):
        return "overwrites a shell start-up, credential or Hermes file"
    if target.startswith("/"):
        clean = os.path.normpath(target)
        top = clean.split("/")[1] if clean != "/" else ""
        if top in ("etc", "boot", "usr", "bin", "sbin", "lib", "lib32", "lib64", "root",
                   "sys", "proc", "dev", "var", "System", "Library"):  # fmt: skip
            if clean.startswith(("/var/tmp", "/dev/shm")):
                return None
            return f"writes into {'/' + top}"
    return None
