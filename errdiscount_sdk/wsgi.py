"""The provider middleware for WSGI apps (Flask, any WSGI app): see docs/provider.md.

```python
from errdiscount_sdk.wsgi import ErrDiscountWSGIMiddleware

ErrDiscountWSGIMiddleware.for_flask(app, issuer=issuer, user_id=lambda environ: ...)
```

Django: `errdiscount_sdk.django`.
"""

from ._provider.errors import ErrorMap, ProviderError
from ._provider.events import EventSink, redact_params
from ._provider.wsgi import ANSWER_KEY, ROUTE_KEY, USER_KEY, ErrDiscountWSGIMiddleware

__all__ = [
    "ANSWER_KEY",
    "ROUTE_KEY",
    "USER_KEY",
    "ErrDiscountWSGIMiddleware",
    "ErrorMap",
    "EventSink",
    "ProviderError",
    "redact_params",
]
