"""HTTP plumbing: body limits, auth, problems, security headers, rate limits."""
