"""billportal: sign customers into their billing portal with a signed link.

The SDK needs only PyJWT: ``billportal.sign_in_url(sso_key, company, customer_id)``.
The server lives in the subpackages and needs ``pip install 'billportal[server]'``.
"""

from __future__ import annotations

from billportal._links import make_token, parse_duration, sign_in_url

__all__ = ["make_token", "parse_duration", "sign_in_url"]
__version__ = "0.1.0"
