"""The provider middleware for ASGI apps (Starlette, FastAPI): see docs/provider.md.

```python
from errdiscount_sdk import ProviderError
from errdiscount_sdk.asgi import ErrDiscountMiddleware

app.add_middleware(ErrDiscountMiddleware, issuer=issuer, user_id=lambda scope: ...)
```
"""

from ._provider.asgi import ErrDiscountMiddleware
from ._provider.errors import ErrorMap, ProviderError
from ._provider.events import EventSink, redact_params

__all__ = ["ErrDiscountMiddleware", "ErrorMap", "EventSink", "ProviderError", "redact_params"]
