"""XML error bodies, parsed safely into plain data for the shape recognisers.

Policy (the defusedxml approach, implemented here on the stdlib's expat): a document
type declaration, an entity declaration or an external entity reference refuses the
whole body — before parsing, by looking for ``<!DOCTYPE`` / ``<!ENTITY``, and again
inside the parser, whatever the encoding — so entity expansion ("billion laughs",
XXE) never starts. Nesting is capped at `MAX_DEPTH` and elements at `MAX_ELEMENTS`.
Namespaces are dropped (``{urn:…}Code`` reads as ``Code``). Never raises.

The result maps the error element's children to their text (or, when they have
children of their own, to a nested mapping; repeated names become lists):
S3/Azure ``<Error><Code>…`` → ``{"Code": …, "Message": …}``; AWS query
``<ErrorResponse><Error>…`` and EC2 ``<Response><Errors><Error>…`` → the inner
``Error``; WeChat Pay ``<xml><return_code>…`` → its members; Taobao/TOP
``<error_response>`` → ``{"error_response": {…}}``; RFC 9457 ``<problem>`` → its members.
"""

from __future__ import annotations

import re
from typing import Final
from xml.parsers import expat

from .decode import MAX_DEPTH

__all__ = ["MAX_ELEMENTS", "XmlDocument", "parse_xml"]

MAX_ELEMENTS: Final = 4096
"""An XML body with more elements than this is refused."""

_DECLARATION = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_ERROR_NAMES: Final = frozenset({"error"})
_SEARCH_DEPTH: Final = 3


class XmlDocument:
    """A parsed XML error body: the root's local name and the error members found."""

    __slots__ = ("members", "root")

    def __init__(self, root: str, members: dict[str, object]) -> None:
        self.root = root
        self.members = members


class _Refused(Exception):
    """Internal: the body declares a DTD or entities, or exceeds a cap."""


class _Element:
    __slots__ = ("children", "name", "text")

    def __init__(self, name: str) -> None:
        self.name = name
        self.text: list[str] = []
        self.children: list[_Element] = []


def parse_xml(body: bytes) -> XmlDocument | None:
    """Parse an XML error body; None when it is not well-formed, declares a DTD or
    entities, or exceeds the caps."""
    if _DECLARATION.search(body):
        return None
    try:
        root = _parse(body)
    except (_Refused, expat.ExpatError, ValueError):
        return None
    if root is None or root.name.lower() == "html":
        return None
    return XmlDocument(root.name, _members(root))


def _refuse(*_: object) -> None:
    raise _Refused


def _refuse_external(*_: object) -> int:
    raise _Refused


def _parse(body: bytes) -> _Element | None:
    parser = expat.ParserCreate(namespace_separator=" ")
    # Never read parameter entities or an external DTD subset, and refuse any
    # declaration the text check above could not see (another encoding).
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.UnparsedEntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse_external
    parser.NotationDeclHandler = _refuse
    parser.buffer_text = True
    stack: list[_Element] = []
    roots: list[_Element] = []
    count = [0]

    def start(name: str, _attributes: dict[str, str]) -> None:
        count[0] += 1
        if count[0] > MAX_ELEMENTS or len(stack) >= MAX_DEPTH:
            raise _Refused
        element = _Element(name.rsplit(" ", 1)[-1])
        (stack[-1].children if stack else roots).append(element)
        stack.append(element)

    def end(_name: str) -> None:
        stack.pop()

    def text(data: str) -> None:
        if stack:
            stack[-1].text.append(data)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.Parse(body, True)
    return roots[0] if roots else None


def _value(element: _Element) -> object:
    if not element.children:
        return "".join(element.text).strip()
    members: dict[str, object] = {}
    for child in element.children:
        value = _value(child)
        if child.name not in members:
            members[child.name] = value
        else:
            previous = members[child.name]
            if isinstance(previous, list):
                previous.append(value)
            else:
                members[child.name] = [previous, value]
    return members


def _find_error(element: _Element, depth: int) -> _Element | None:
    if element.name.lower() in _ERROR_NAMES and element.children:
        return element
    if depth >= _SEARCH_DEPTH:
        return None
    for child in element.children:
        found = _find_error(child, depth + 1)
        if found is not None:
            return found
    return None


def _members(root: _Element) -> dict[str, object]:
    error = _find_error(root, 0)
    if error is not None and error is not root:
        value = _value(error)
        members = value if isinstance(value, dict) else {}
        # Keep the envelope's siblings of the error (RequestId) beside its members.
        for child in root.children:
            if child is not error and not child.children:
                members.setdefault(child.name, _value(child))
        return members
    value = _value(root)
    members = value if isinstance(value, dict) else {}
    if root.name.endswith("_response"):  # Taobao/TOP and its kin name their envelope
        return {root.name: members}
    return members
