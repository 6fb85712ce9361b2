"""The postlexer: Python-style indentation from the lexer's newlines, and keywords refused
as names.

Lark's contextual lexer lexes a keyword as a name where only a name fits (``input for:``);
the postlexer refuses it there, so the keywords are reserved everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator

from lark import Token
from lark.indenter import Indenter

from .limits import MAX_FILE_TOKENS, MAX_NESTING, MAX_STATEMENT_TOKENS
from .syntax_errors import PostlexError


class SchedIndenter(Indenter):
    """Python-style _INDENT/_DEDENT from the _NL tokens; newlines inside brackets are dropped.

    Unlike Lark's Indenter it places indent tokens at the start of the indented line, reports
    an inconsistent dedent with its position, and keeps the open brackets (for "never
    closed" messages)."""

    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB"]
    CLOSE_PAREN_types = ["RPAR", "RSQB"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8

    def __init__(self) -> None:
        super().__init__()
        self.open_brackets: list[Token] = []
        self.keywords: frozenset[str] = frozenset()  # the grammar's, set once it is built

    def handle_NL(self, token: Token) -> Iterator[Token]:
        if self.open_brackets:
            return
        yield token
        indent_str = token.rsplit("\n", 1)[1]
        indent = indent_str.count(" ") + indent_str.count("\t") * self.tab_len
        line, col = token.end_line, token.end_column
        assert line is not None and col is not None  # the lexer places its tokens

        def make(kind: str) -> Token:
            return Token(kind, indent_str, token.end_pos, line, col, line, col, token.end_pos)

        if indent > self.indent_level[-1]:
            self.indent_level.append(indent)
            yield make(self.INDENT_type)
        else:
            while indent < self.indent_level[-1]:
                self.indent_level.pop()
                yield make(self.DEDENT_type)
            if indent != self.indent_level[-1]:
                raise PostlexError(
                    "this line's indentation matches no enclosing block", line, col)

    def _process(self, stream):
        token = None
        line_start = True
        first, count = None, 0  # the statement's first token, and its tokens so far
        total, squares = 0, 0  # the file's tokens; square brackets open now
        for token in stream:
            total += 1
            if total > MAX_FILE_TOKENS:
                raise PostlexError(f"a file of more than {MAX_FILE_TOKENS} tokens (the limit); "
                                   "split it into files that use each other", token.line,
                                   token.column)
            if token.type == self.NL_type:
                yield from self.handle_NL(token)
                line_start = not self.open_brackets
                if line_start:
                    first, count = None, 0
                continue
            if token.type == "NAME" and token in self.keywords:
                # Where only a name fits, Lark's contextual lexer takes a keyword for one.
                raise PostlexError(_keyword_message(token, line_start), token.line,
                                   token.column)
            first, count = first or token, count + 1
            if count > MAX_STATEMENT_TOKENS:
                raise PostlexError(f"a line of more than {MAX_STATEMENT_TOKENS} tokens (the "
                                   "limit); split it up", first.line, first.column)
            line_start = False
            yield token
            if token.type in self.OPEN_PAREN_types:
                self.open_brackets.append(token)
                squares += token.type == "LSQB"
                if squares > MAX_NESTING:
                    raise PostlexError(
                        f"square brackets nested more than {MAX_NESTING} deep (the limit of "
                        "nesting); give parts of it names of their own", token.line,
                        token.column)
            elif token.type in self.CLOSE_PAREN_types and self.open_brackets:
                squares -= self.open_brackets.pop().type == "LSQB"
        while len(self.indent_level) > 1:
            self.indent_level.pop()
            if token is None:
                yield Token(self.DEDENT_type, "", 0, 1, 1, 1, 1, 0)
            else:
                yield Token(self.DEDENT_type, "", token.end_pos, token.end_line,
                            token.end_column, token.end_line, token.end_column, token.end_pos)

    def process(self, stream):
        self.indent_level = [0]
        self.open_brackets = []
        return self._process(stream)


def _keyword_message(token: Token, line_start: bool) -> str:
    if token == "over" and line_start:
        return ("an 'over' clause goes at the end of its stage, or on the next line indented "
                "under the stage")
    return f"'{token}' is a keyword; it cannot be used as a name"
