"""Why a response left as it did: the values of the ``Reqio-Debug`` header and log line.

Every front door says the same thing for the same outcome, so the reasons live in one place.
A streamed page's header can only say :data:`STREAMED` (its outcome is known once the last
piece has gone through the rewriter, after the headers were sent); the DEBUG log line written
at its end gives the outcome.
"""

from __future__ import annotations

__all__ = [
    "ANONYMOUS",
    "DEBUG_HEADER",
    "ENCODED_LEFT",
    "HEAD_EDITED",
    "MINTER_FAILED",
    "NOT_HTML",
    "NOT_STAMPABLE",
    "NO_WIDGET_TAG",
    "REENCODED",
    "RESOLVER_FAILED",
    "RESOLVER_TIMEOUT",
    "REWRITTEN",
    "STREAMED",
    "UNREADABLE",
]

#: The response header that says why, when debugging is on.
DEBUG_HEADER = "Reqio-Debug"

REWRITTEN = "rewritten"  #: the widget tag carries the token
ANONYMOUS = "anonymous"  #: nobody signed in: untouched
NOT_HTML = "not-html"  #: not a page that can carry a token (JSON, a 304, an attachment...)
NO_WIDGET_TAG = "no-widget-tag"  #: signed in, but no widget tag on the page
NOT_STAMPABLE = "tag-not-stampable"  #: a widget-like tag the rewriter could not stamp (why)
ENCODED_LEFT = "encoded; left"  #: compressed in a coding this installation cannot decode
REENCODED = "re-encoded"  #: compressed: decoded, rewritten and encoded again
RESOLVER_FAILED = "resolver-failed"  #: the resolver raised or answered garbage (logged)
RESOLVER_TIMEOUT = "resolver-timeout"  #: the resolver did not answer in time (logged)
MINTER_FAILED = "minter-failed"  #: the minter refused the identity (logged)
STREAMED = "streamed"  #: streamed through the rewriter: the outcome is in the log line
HEAD_EDITED = "head-edited"  #: a signed-in HEAD without its body: the GET's edits, the app's length
UNREADABLE = "body-not-readable"  #: a body we cannot see (zero-copy send, unreadable file)
