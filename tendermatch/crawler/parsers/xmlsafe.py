"""Parse untrusted XML with entities, DTDs and network access off.

Notices never carry a DTD, so a document that declares one (the vehicle of XXE and
"billion laughs") is refused outright rather than parsed with expansion switched off.
"""

from __future__ import annotations

import threading

from lxml import etree

from .common import MAX_DOCUMENT_BYTES, ParseError, too_large


def check_size(content: bytes, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> None:
    """Raise ParseError for empty, oversized or binary documents."""
    if not content or content.isspace():  # (strip() would copy the whole document)
        raise ParseError("empty document")
    if len(content) > max_bytes:
        raise ParseError(too_large(len(content), max_bytes))
    head = content[:4096]
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ParseError("binary content, not a text document")


def make_parser() -> etree.XMLParser:
    """An lxml parser that resolves no entities, loads no DTD and never touches the network."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
        collect_ids=False,
    )


_local_parser = threading.local()


def _parser() -> etree.XMLParser:
    """This thread's parser (an lxml parser may not be shared between threads)."""
    parser = getattr(_local_parser, "parser", None)
    if parser is None:
        parser = _local_parser.parser = make_parser()
    return parser


def parse_xml(content: bytes, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> etree._Element:
    """Parse ``content`` and return the root element, or raise ParseError with one line."""
    check_size(content, max_bytes=max_bytes)
    # XML keywords are case-sensitive: a plain search of the head, without copying it.
    if content.find(b"<!DOCTYPE", 0, 65536) >= 0 or content.find(b"<!ENTITY", 0, 65536) >= 0:
        raise ParseError("XML with a DTD or entity declarations is not accepted (entities are off)")
    try:
        root = etree.fromstring(content, parser=_parser())
    except etree.XMLSyntaxError as error:
        message = str(error).splitlines()[0] if str(error) else "syntax error"
        raise ParseError(f"malformed XML: {message}") from None
    except ValueError as error:  # e.g. unicode strings with an encoding declaration
        raise ParseError(f"malformed XML: {error}") from None
    if root is None:
        raise ParseError("malformed XML: no root element")
    if root.getroottree().docinfo.internalDTD is not None:  # a DTD hidden past the first 64 KB
        raise ParseError("XML with a DTD or entity declarations is not accepted (entities are off)")
    return root


def local_name(element: etree._Element) -> str:
    """The tag without its namespace."""
    return etree.QName(element).localname
