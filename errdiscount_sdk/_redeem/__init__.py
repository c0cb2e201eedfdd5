"""The redemption client and its models."""
