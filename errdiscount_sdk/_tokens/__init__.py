"""Discount tokens: the v1 spec, keys, verifier, issuer, JWKS cache."""
