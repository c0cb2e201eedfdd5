"""Provider-side parts: compensation policy, detection rules, middleware."""
