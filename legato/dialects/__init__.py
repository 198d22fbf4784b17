"""Faces that speak other systems' APIs (each module one system), on the service layer."""
