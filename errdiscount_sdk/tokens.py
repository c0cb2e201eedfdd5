"""Token helpers a server needs beyond what an app does: spec checks and key encoding.

Public home of the validators `server_stub` shares with the SDK's issuer, so the two
apply one definition of a valid compensation, alert URL and base64url text.
"""

from ._tokens.keys import b64url_decode, check_kid
from ._tokens.spec import SEGMENTS, check_compensation, check_https_url

__all__ = ["SEGMENTS", "b64url_decode", "check_compensation", "check_https_url", "check_kid"]
