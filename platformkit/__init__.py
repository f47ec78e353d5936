"""Project infrastructure every app may use: cache, queueing, outage logging, request metadata.

It imports no app of the portal.
"""
