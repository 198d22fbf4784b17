"""HTTP plumbing every face shares: auth, problem+json, responses, content negotiation."""
