"""The provider middleware for Django: see docs/provider.md.

```python
MIDDLEWARE = [..., "errdiscount_sdk.django.ErrDiscountDjangoMiddleware"]
ERRDISCOUNT = {"issuer": issuer, "user_id": lambda request: ...}
```
"""

from ._provider.django import ErrDiscountDjangoMiddleware, django_middleware
from ._provider.errors import ErrorMap, ProviderError
from ._provider.events import EventSink, redact_params

__all__ = [
    "ErrDiscountDjangoMiddleware",
    "ErrorMap",
    "EventSink",
    "ProviderError",
    "django_middleware",
    "redact_params",
]
